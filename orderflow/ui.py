"""Rendering for people (rich) and for machines (one JSON document on stdout, nothing else)."""

from __future__ import annotations

import contextlib
import json
import re
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from orderflow.provision.executor import Progress

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
        # The text is plain: a message naming "[stacks.default]" or a JSON value must not be read as markup.
        self.err.print(f"[yellow]warning:[/] {escape(text)}")

    def error(self, text: str) -> None:
        self.err.print(f"[red]error:[/] {escape(text)}")

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

    def progress(self) -> StepsView:
        """What provisioning is doing: a live table on a terminal, plain lines otherwise, nothing with --json."""
        return StepsView(self)


class StepsView(Progress):
    """Provisioning progress. On a terminal, a live view (stderr) of every running step, how long it has run and
    what it waits for; elsewhere a plain line (stdout) whenever a step has waited a second and its reason changes."""

    def __init__(self, output: Output) -> None:
        self.output = output
        self.live = not output.as_json and output.err.is_terminal
        self._lock = threading.Lock()
        self._running: dict[str, tuple[str, float]] = {}  # key -> (label, started)
        self._reasons: dict[str, str] = {}
        self._printed: dict[str, str] = {}
        self._view: Live | None = None

    def __enter__(self) -> StepsView:
        if self.live:
            self._view = Live(self._render(), console=self.output.err, refresh_per_second=4, transient=True)
            self._view.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._view is not None:
            self._view.__exit__(None, None, None)
            self._view = None

    def _render(self) -> Table:
        table = Table.grid(padding=(0, 1))
        now = time.monotonic()
        for key, (label, started) in list(self._running.items()):
            table.add_row("[cyan]…[/]", label, f"[dim]{now - started:.0f}s[/]", f"[dim]{self._reasons.get(key, '')}[/]")
        return table

    def _refresh(self) -> None:
        if self._view is not None:
            self._view.update(self._render())

    def started(self, key: str, kind: str, name: str) -> None:
        with self._lock:
            self._running[key] = (f"{kind} [bold]{name}[/]", time.monotonic())
            self._refresh()

    def waiting(self, key: str, text: str) -> None:
        with self._lock:
            self._reasons[key] = text
            self._refresh()
            running = self._running.get(key)
            if self.live or self.output.as_json or running is None or time.monotonic() - running[1] < 1.0:
                return
            gist = re.sub(r"\d+", "#", text)
            if self._printed.get(key) != gist:
                self._printed[key] = gist
                self.output.line(f"  … {running[0]}: {escape(text)}")

    def finished(self, key: str, kind: str, name: str, outcome: str, seconds: float) -> None:
        with self._lock:
            self._running.pop(key, None)
            self._reasons.pop(key, None)
            self._refresh()
