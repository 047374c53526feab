"""Each command's result as a person reads it (rich markup through `Output`); `--json` documents come from the
results' own `to_document()`."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

from rich.markup import escape

from orderflow import settings_file
from orderflow.flow import trace as trace_flow
from orderflow.flow import verify as verify_flow
from orderflow.flow.demo import DemoStages, removed
from orderflow.flow.dlq import DeadLetters
from orderflow.flow.logs import LogEvent
from orderflow.flow.logs import render as render_log_event
from orderflow.flow.publish import Published
from orderflow.iac.export import Exported
from orderflow.local.server.control import LocalStatus
from orderflow.local.server.state import log_file
from orderflow.provision import operations
from orderflow.provision.base import Context
from orderflow.provision.executor import Outcome, Progress, StepResult
from orderflow.stack import StackConfig, user_settings
from orderflow.ui import MARKS, Output, trace_table


def render_settings(out: Output, resolved: settings_file.Resolved | None, reverting: dict[str, Any]) -> None:
    if resolved is not None and resolved.file is not None:
        out.line(escape(f"settings file: {resolved.file.shown} [stacks.{resolved.file.stack}]"))
    if resolved is not None:
        chosen = resolved.chosen()
        if chosen:
            described = (f"{name} {value} (from {source})" for name, (value, source) in chosen.items())
            out.line(escape("settings: " + ", ".join(described)))
    for name, (deployed, desired) in reverting.items():
        flag = next(s.metadata["flag"] for s in user_settings() if s.name == name)
        out.warn(
            f"{name} goes back to its default {desired} (the stack has {deployed}, which no flag, variable or "
            f"{settings_file.CONFIG_FILE} asks for): to keep it, pass {flag} {deployed} or set {name} = "
            f"{deployed!r} in {settings_file.CONFIG_FILE}"
        )


def render_up(
    out: Output,
    ctx: Context,
    report: operations.UpReport,
    dry_run: bool,
    resolved: settings_file.Resolved | None = None,
    reverting: dict[str, Any] | None = None,
) -> None:
    for warning in report.warnings:
        out.warn(warning)
    render_settings(out, resolved, reverting or {})
    if dry_run:
        for step in report.steps:
            c = step.change
            out.line(f"{MARKS.get(c.action, c.action):<24} {c.kind} [bold]{c.name}[/]")
            render_operations(out, c.details if c.action == "update" else (), c.operations)
        changes = sum(1 for s in report.steps if s.change.action != "unchanged")
        out.line(f"dry run: {changes} change(s) planned, nothing was changed")
    else:
        for r in report.results:
            timing = f" [dim]({r.seconds:.1f}s)[/]" if r.outcome != Outcome.UNCHANGED else ""
            out.line(f"{MARKS.get(r.outcome, r.outcome):<24} {r.kind} [bold]{r.name}[/]{timing}")
            render_operations(out, r.details if r.outcome == Outcome.UPDATED else (), r.operations)
        out.line(f"stack [bold]{ctx.config.name}[/] is up in {ctx.aws.region} (account {ctx.aws.account})")


def render_operations(out: Output, reasons: tuple[str, ...], ops: tuple[Any, ...]) -> None:
    """Why, then the operations themselves (planned, or run): what `--dry-run` shows is what runs."""
    for reason in reasons:
        out.line(f"      {escape(reason)}")
    for op in ops:
        out.line(f"      [dim]→ {escape(op.describe())}[/]")


def render_verify(out: Output, report: verify_flow.VerifyReport) -> None:
    marks = {True: "[green]✔ pass[/]", False: "[red]✘ FAIL[/]", None: "[dim]- skipped[/]"}
    out.table(
        f"order {report.order_id}",
        ["hop", "result", "after", "evidence"],
        [
            [
                c.title,
                marks[c.passed],
                f"{c.seconds:.2f}s" if c.seconds is not None else "",
                c.evidence + (f"\n[yellow]hint:[/] {c.hint}" if c.hint and c.passed is False else ""),
            ]
            for c in report.checks
        ],
    )
    for warning in report.warnings:
        out.warn(warning)
    if report.passed:
        out.line(f"[green]every hop proven[/] for order {report.order_id} in {report.seconds:.2f}s")


def render_trace(out: Output, story: trace_flow.Trace) -> None:
    if out.as_json:
        return
    out.out.print(trace_table(story))
    if story.stored is not None:
        out.line(f"stored now: {escape(json.dumps(story.stored, sort_keys=True, default=str))}")
    elif story.order_id:
        out.line(f"not stored in the table (no item with orderId {escape(story.order_id)})")
    if any(e.estimated for e in story.events):
        out.line("[dim]~ estimated: SQS records no time for a move to the DLQ or a redrive[/]")


def render_down(out: Output, ctx: Context, results: list[StepResult]) -> None:
    for r in results:
        out.line(f"{MARKS.get(r.outcome, r.outcome):<32} {r.kind} [bold]{r.name}[/]")
        for detail in r.details:
            out.line(f"      {escape(detail)}")
    foreign = [r for r in results if r.outcome == Outcome.FOREIGN]
    left_alone = f" ({len(foreign)} foreign resource(s) left alone)" if foreign else ""
    kept = [r for r in reversed(results) if r.outcome == Outcome.KEPT]  # in the order `up` makes them
    keeping = f"; kept {', '.join(f'{r.kind} {r.name}' for r in kept)} and what they hold" if kept else ""
    out.line(f"stack [bold]{ctx.config.name}[/] is down{left_alone}{escape(keeping)}")


STATE_COLOURS = {"exists": "green", "missing": "dim", "foreign": "magenta", "owner unknown": "yellow"}


def render_status(out: Output, ctx: Context, rows: list[dict[str, Any]], warnings: list[str]) -> None:
    def state(row: dict[str, Any]) -> str:
        detail = f" ({row['detail']})" if row.get("detail") else ""
        return f"[{STATE_COLOURS[row['state']]}]{row['state']}[/]{detail}"

    managed = f" (managed by {ctx.config.managed_by})" if ctx.config.managed_by else ""
    out.table(
        f"stack {ctx.config.name}{managed} in {ctx.aws.region}",
        ["resource", "name", "state", "messages", "ARN"],
        [
            [
                r["kind"],
                r["name"],
                state(r),
                f"{r['messages']} ({r['in_flight']} in flight)" if "messages" in r else "",
                r["arn"],
            ]
            for r in rows
        ],
    )
    for warning in warnings:
        out.warn(warning)


def render_exported(out: Output, exported: Exported, next_steps: list[str]) -> None:
    for path in exported.files:
        out.line(f"wrote {escape(str(path))}")
    if exported.code_location:
        out.line(f"uploaded the code package to {escape(exported.code_location)}")
    out.line(f"{exported.format} export of the stack in {escape(str(exported.directory))}; next:")
    for step in next_steps:
        out.line(f"  {escape(step)}")


def render_published(out: Output, config: StackConfig, published: list[Published]) -> None:
    for p in published[:20]:
        out.line(f"published order [bold]{p.order_id}[/] as SNS message {p.message_id}")
    if len(published) > 20:
        out.line(f"… and {len(published) - 20} more")
    out.line(f"{len(published)} order(s) sent to {config.topic_name}; check them with `orderflow verify`")


def render_dead_letters(out: Output, config: StackConfig, found: DeadLetters) -> None:
    unread = f"; {found.unread} more not shown (in flight or over --limit)" if found.unread else ""
    out.table(
        f"{config.dlq_name}: {len(found.letters)} dead letter(s) shown of {found.counted} counted by SQS{unread}",
        ["orderId", "receives", "first received", "body"],
        [
            [lt.order_id or "[dim]unparseable[/]", str(lt.receive_count), lt.first_received or "", escape(lt.excerpt)]
            for lt in found.letters
        ],
    )


def render_local_server(out: Output, status: LocalStatus) -> None:
    server = status.server
    assert server is not None
    out.line(f"embedded AWS running at [bold]{server.endpoint}[/] (pid {server.pid}); log: {log_file()}")
    if server.state:
        out.line(escape(f"state: {server.state}"))
    if server.realistic:
        out.line(f"realistic control plane: AWS's delays x{server.time_scale:g} (docs/fidelity.md)")
    if server.time_scale != 1.0:
        out.line(f"CloudWatch's minute (metrics, alarms) lasts {60 * server.time_scale:g} s")
    out.line("use it with `orderflow --local …`; stop it with `orderflow local stop`")


class DemoNarration(DemoStages):
    """`orderflow demo` as it happens: the guide's step numbers, up's and verify's own renderings."""

    def __init__(self, out: Output) -> None:
        self.out = out
        self.config = StackConfig()

    @contextlib.contextmanager
    def converging(self) -> Iterator[Progress]:
        self.out.line(
            "[bold]1-8.[/] orderflow up: table, topic, queues, subscription + queue policy, role, function, trigger"
        )
        with self.out.progress() as progress:
            yield progress

    def converged(self, ctx: Context, report: operations.UpReport) -> None:
        self.config = ctx.config
        render_up(self.out, ctx, report, dry_run=False)

    def publishing(self) -> None:
        self.out.line("[bold]9.[/] publish the guide's sample order to the topic")

    def published(self, order: Published) -> None:
        self.out.line(f"   order [bold]{order.order_id}[/] published as SNS message {order.message_id}")

    @contextlib.contextmanager
    def verifying(self) -> Iterator[None]:
        self.out.line("[bold]10.[/] verify every hop")
        with self.out.waiting("following the order …"):
            yield

    def verified(self, report: verify_flow.VerifyReport, item: Any, lines: list[LogEvent]) -> None:
        render_verify(self.out, report)
        self.out.line(f"   the item in {self.config.table_name}: {escape(json.dumps(item, sort_keys=True))}")
        self.out.line(f"   the function's log lines in {self.config.log_group_name}:")
        for event in lines:
            self.out.line(f"     {escape(render_log_event(event))}")

    @contextlib.contextmanager
    def tearing_down(self) -> Iterator[Progress]:
        self.out.line("[bold]clean up.[/] orderflow down")
        with self.out.progress() as progress:
            yield progress

    def torn_down(self, results: list[StepResult], left: list[dict[str, Any]]) -> None:
        self.out.line(f"   removed {removed(results)} resources; {len(left)} left behind")
