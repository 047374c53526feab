"""Rendering for people (rich) and for machines (one JSON document on stdout, nothing else)."""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.table import Table

MARKS = {
    "created": "[green]+ created[/]",
    "updated": "[yellow]~ updated[/]",
    "unchanged": "[dim]= unchanged[/]",
    "create": "[green]+ create[/]",
    "update": "[yellow]~ update[/]",
    "deleted": "[red]- deleted[/]",
    "already gone": "[dim]. already gone[/]",
    "not ours, left alone": "[magenta]! not ours, left alone[/]",
    "kept": "[cyan]= kept (--keep-data)[/]",
}


class Output:
    """Human output on stdout (rich), or, with --json, a single JSON document on stdout."""

    def __init__(self, as_json: bool) -> None:
        self.as_json = as_json
        self.out = Console(highlight=False, soft_wrap=True)
        self.err = Console(stderr=True, highlight=False, soft_wrap=True)

    def line(self, text: str) -> None:
        if not self.as_json:
            self.out.print(text)

    def warn(self, text: str) -> None:
        self.err.print(f"[yellow]warning:[/] {text}")

    def error(self, text: str) -> None:
        self.err.print(f"[red]error:[/] {text}", markup=True)

    def document(self, data: Any) -> None:
        if self.as_json:
            sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
            sys.stdout.flush()

    def table(self, title: str, columns: list[str], rows: list[list[str]]) -> None:
        if self.as_json:
            return
        table = Table(title=title, title_justify="left")
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*row)
        self.out.print(table)

    @contextlib.contextmanager
    def waiting(self, text: str) -> Iterator[None]:
        """A spinner on stderr while something slow happens (never on stdout, so --json stays clean)."""
        if self.as_json or not self.err.is_terminal:
            yield
            return
        with self.err.status(text):
            yield

    def progress(self):
        """A provisioning progress callback: a spinner per step, then one line per resource."""
        status = None

        def on_progress(kind: str, name: str, phase: str, seconds: float) -> None:
            nonlocal status
            if self.as_json:
                return
            if phase == "start" and self.err.is_terminal:
                status = self.err.status(f"{kind} {name} …")
                status.start()
            elif phase == "done" and status is not None:
                status.stop()
                status = None

        return on_progress
