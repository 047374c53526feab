"""Rendering for people (rich) and for machines (one JSON document on stdout, nothing else)."""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from orderflow.flow.trace import Trace
from orderflow.flow.watch import Snapshot, sparkline
from orderflow.provision.executor import Outcome, Progress

MARKS: dict[str, str] = {
    Outcome.CREATED: "[green]+ created[/]",
    Outcome.UPDATED: "[yellow]~ updated[/]",
    Outcome.UNCHANGED: "[dim]= unchanged[/]",
    Outcome.DELETED: "[red]- deleted[/]",
    Outcome.ABSENT: "[dim]. already gone[/]",
    Outcome.FOREIGN: "[magenta]! not ours, left alone[/]",
    Outcome.KEPT: "[cyan]= kept (--keep-data)[/]",
    # a plan's actions (`up --dry-run`; "unchanged" is the outcome's word too)
    "create": "[green]+ create[/]",
    "update": "[yellow]~ update[/]",
}


class Output:
    """Human output on stdout (rich), or, with --json, a single JSON document on stdout."""

    def __init__(self, as_json: bool, console: Console | None = None) -> None:
        self.as_json = as_json
        self.out = console or Console(highlight=False, soft_wrap=True)
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


# Below this many columns the dashboard's table would wrap into noise: plain lines instead.
DASHBOARD_MIN_WIDTH = 72
# The sparkline shows the latest intervals only (the JSON snapshot has them all).
SPARK_WIDTH = 40
ALARM_COLOURS = {"OK": "green", "ALARM": "bold red", "INSUFFICIENT_DATA": "yellow", "missing": "magenta"}


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms"


def _count(value: int | None) -> str:
    return "-" if value is None else str(value)


def dashboard(snapshot: Snapshot, stack: str, taken_at: str) -> Table:
    """The `watch` dashboard: one table, counts over the window."""
    s = snapshot
    table = Table(
        title=f"stack {stack} · last {s.window_s}s · {taken_at} UTC · Ctrl-C to stop",
        title_justify="left",
        show_header=False,
    )
    table.add_column("what", style="bold")
    table.add_column("value")
    oldest = "-" if s.queue_oldest_age_s is None else f"{s.queue_oldest_age_s:.0f}s"
    table.add_row("queue", f"{s.queue_visible} visible · {s.queue_in_flight} in flight · oldest {oldest}")
    table.add_row("dead letters", f"[{'red' if s.dlq_visible else 'green'}]{s.dlq_visible}[/]")
    table.add_row(
        "function",
        f"{s.invocations} invocations · [{'red' if s.errors else 'green'}]{s.errors} errors[/] · "
        f"[{'red' if s.throttles else 'green'}]{s.throttles} throttles[/] · "
        f"peak {_count(s.peak_concurrency)} concurrent",
    )
    table.add_row("duration", f"p50 {_ms(s.duration_p50_ms)} · p95 {_ms(s.duration_p95_ms)}")
    table.add_row(
        "orders written",
        f"{sum(s.written)} · per {s.interval_s}s [cyan]{sparkline(s.written[-SPARK_WIDTH:])}[/] "
        f"(latest {s.written[-1] if s.written else 0})",
    )
    table.add_row(
        "DLQ alarm", f"[{ALARM_COLOURS.get(s.alarm_state, 'white')}]{s.alarm_state}[/] ({escape(s.alarm_name)})"
    )
    return table


# Below this width the plain line is the compact one (a terminal of 60 columns must not wrap it).
COMPACT_BELOW = 120


def snapshot_line(snapshot: Snapshot, taken_at: str, width: int | None = None) -> str:
    """The dashboard in one plain line, for a log or a narrow terminal; on a terminal narrower than 120 columns the
    compact form, which fits in 60 (queue visible/in flight, dead letters, invocations, errors, throttles, p95,
    orders written, alarm, window)."""
    s = snapshot
    oldest = "-" if s.queue_oldest_age_s is None else f"{s.queue_oldest_age_s:.0f}s"
    if width is not None and width < COMPACT_BELOW:
        line = (
            f"{taken_at} q {s.queue_visible}/{s.queue_in_flight} dlq {s.dlq_visible} inv {s.invocations} "
            f"err {s.errors} thr {s.throttles} p95 {_ms(s.duration_p95_ms)} +{sum(s.written)} "
            f"{s.alarm_state} ({s.window_s}s)"
        )
        return line if len(line) <= width else line[: max(1, width - 1)] + "…"
    return (
        f"{taken_at} queue {s.queue_visible} visible/{s.queue_in_flight} in flight/oldest {oldest} | "
        f"dlq {s.dlq_visible} | {s.invocations} inv {s.errors} err {s.throttles} thr "
        f"{_count(s.peak_concurrency)} conc | "
        f"p50 {_ms(s.duration_p50_ms)} p95 {_ms(s.duration_p95_ms)} | written {sum(s.written)} "
        f"{sparkline(s.written[-SPARK_WIDTH:])} | alarm {s.alarm_state} (last {s.window_s}s)"
    )


def show_snapshot(output: Output, snapshot: Snapshot, stack: str, taken_at: str) -> None:
    """One snapshot: the dashboard, or on a narrow terminal one plain line (nothing with --json)."""
    if output.out.width < DASHBOARD_MIN_WIDTH:
        output.line(escape(snapshot_line(snapshot, taken_at, output.out.width)))
    elif not output.as_json:
        output.out.print(dashboard(snapshot, stack, taken_at))


def keep_watching(
    output: Output,
    take: Callable[[], tuple[Snapshot, str]],
    first: tuple[Snapshot, str],
    stack: str,
    interval: float,
) -> None:
    """Refresh every `interval` seconds until Ctrl-C: a live dashboard on a terminal wide enough, elsewhere a plain
    line per refresh (a log, a pipe, a narrow terminal)."""
    snapshot, taken_at = first
    try:
        if output.out.is_terminal and output.out.width >= DASHBOARD_MIN_WIDTH:
            with Live(dashboard(snapshot, stack, taken_at), console=output.out, auto_refresh=False) as view:
                while True:
                    time.sleep(interval)
                    snapshot, taken_at = take()
                    view.update(dashboard(snapshot, stack, taken_at), refresh=True)
        width = output.out.width if output.out.is_terminal else None
        while True:
            output.line(escape(snapshot_line(snapshot, taken_at, width)))
            time.sleep(interval)
            snapshot, taken_at = take()
    except KeyboardInterrupt:
        pass  # Ctrl-C is the way to end watching


HOP_COLOURS = {"sns": "magenta", "sqs": "cyan", "lambda": "yellow", "dynamodb": "green", "dlq": "red"}
WATERFALL_WIDTH = 32


def waterfall_bar(start_ms: int, duration_ms: float | None, origin_ms: int, span_ms: int, width: int) -> str:
    """Where an event sits on the trace's time axis: a bar as long as its duration, or a tick (pure)."""
    scale = width / max(1, span_ms)
    offset = min(width - 1, int((start_ms - origin_ms) * scale))
    length = max(1, int((duration_ms or 0) * scale)) if duration_ms is not None else 1
    mark = "█" * min(length, width - offset) if duration_ms is not None else "│"
    return " " * offset + mark


def trace_table(trace: Trace) -> Table:
    """The trace as a timeline: time since the first event, hop, what happened, a waterfall against time."""
    origin = trace.events[0].at_ms
    span = max(e.at_ms + int(e.duration_ms or 0) for e in trace.events) - origin
    title = f"order {trace.order_id or '(no orderId)'}" + (f" · message {trace.message_id}" if trace.message_id else "")
    table = Table(title=escape(title), title_justify="left")
    for column in ("after", "hop", "what", "details"):
        table.add_column(column, overflow="fold")
    table.add_column(f"0 … {span / 1000:.1f}s", no_wrap=True)
    for event in trace.events:
        colour = HOP_COLOURS.get(event.hop, "white")
        details = {k: v for k, v in event.details.items() if v is not None and k != "outcome"}
        shown = " ".join(f"{k}={v}" for k, v in details.items())
        if event.duration_ms is not None:
            shown = f"{event.duration_ms:.0f} ms " + shown
        table.add_row(
            f"+{(event.at_ms - origin) / 1000:.2f}s" + ("~" if event.estimated else ""),
            f"[{colour}]{event.hop}[/]",
            escape(event.what),
            f"[dim]{escape(shown)}[/]",
            f"[{colour}]{waterfall_bar(event.at_ms, event.duration_ms, origin, span, WATERFALL_WIDTH)}[/]",
        )
    return table


def exported(render: Callable[[Output], None], path: Path) -> None:
    """Render a report again into a recording console and save it as SVG or HTML (by the file's suffix), for a bug
    report or a pull request. Works with --json too: the file holds the human view."""
    recorder = Output(as_json=False, console=Console(record=True, file=io.StringIO(), width=120, highlight=False))
    render(recorder)
    if path.suffix.lower() == ".svg":
        recorder.out.save_svg(str(path), title=f"orderflow {path.stem}")
    else:
        recorder.out.save_html(str(path))


def export_format_problem(path: Path) -> str | None:
    if path.suffix.lower() in (".svg", ".html", ".htm"):
        return None
    return f"--export {path} must end in .svg, .html or .htm"
