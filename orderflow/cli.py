"""The orderflow command line: parse, call, render. No boto3 here."""

from __future__ import annotations

import json
import math
import os
import re
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from rich.markup import escape

from orderflow import __version__, settings_file
from orderflow.aws import LOCAL_CONFIG, Aws, aws_errors, connect
from orderflow.errors import Cancelled, ConfigError, FileProblem, NeedsConfirmation, NotFoundError, OrderflowError
from orderflow.flow import dlq as dlq_flow
from orderflow.flow import logs as logs_flow
from orderflow.flow import publish
from orderflow.flow import trace as trace_flow
from orderflow.flow import verify as verify_flow
from orderflow.flow import watch as watch_flow
from orderflow.local.server import control, state
from orderflow.provision import operations
from orderflow.provision.base import Context
from orderflow.settings_file import DEFAULT_SOURCE
from orderflow.stack import DEFAULT_STACK, StackConfig, StackSettings, user_settings
from orderflow.ui import MARKS, Output, export_format_problem, exported, keep_watching, show_snapshot, trace_table


@dataclass
class Options:
    stack: str
    region: str | None
    profile: str | None
    endpoint_url: str | None
    local: bool
    output: Output
    config: Path | None = None

    def connect(self) -> Aws:
        if self.local:
            endpoint = self.endpoint_url or state.running_endpoint()
            return connect(
                region=state.local_region(self.region),
                endpoint_url=endpoint,
                credentials=state.LOCAL_CREDENTIALS,
                config=LOCAL_CONFIG,
            )
        return connect(region=self.region, profile=self.profile, endpoint_url=self.endpoint_url)

    def context(self, settings: StackSettings | None = None) -> Context:
        config = StackConfig(self.stack, settings or StackSettings())
        ctx = Context(aws=self.connect(), config=config)
        if self.local:
            # The embedded AWS runs AWS's delays at its time scale (none at all unless started --realistic).
            server = state.recorded_server()
            ctx.time_scale = server.delay_scale if server else 0.0
        return ctx


class FiniteFloat(click.FloatRange):
    """A number of seconds in a range; click's FloatRange lets NaN through (every comparison with NaN is false), and
    `verify --timeout nan` would never end."""

    name = "number"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


# `orderflow --help` lists the commands in the order a user meets them, not alphabetically.
COMMAND_ORDER = (
    "up",
    "publish-test",
    "verify",
    "status",
    "watch",
    "trace",
    "logs",
    "dlq",
    "down",
    "local",
    "demo",
)


def _wants_json(args: list[str]) -> bool:
    """--json given before the command (or ORDERFLOW_JSON): known even when the arguments cannot be parsed."""
    before_command = []
    for arg in args:
        if arg in COMMAND_ORDER:
            break
        before_command.append(arg)
    value = os.environ.get("ORDERFLOW_JSON", "").strip().lower()
    return "--json" in before_command or value in ("1", "true", "yes", "on")


class OrderflowGroup(click.Group):
    """Turns every expected failure into one line on stderr and a non-zero exit, never a traceback; with --json,
    every outcome (usage errors included) is one JSON document on stdout whose `ok` matches the exit code."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(self.commands, key=lambda name: (*COMMAND_ORDER, name).index(name))

    def main(self, args: Any = None, **kwargs: Any) -> Any:  # type: ignore[override]
        arguments = list(sys.argv[1:] if args is None else args)
        if not arguments:
            arguments = ["--help"]  # a bare `orderflow` is a question, not a usage error
        try:
            code = super().main(arguments, standalone_mode=False, **kwargs)
        except click.UsageError as e:
            if _wants_json(arguments):
                usage = e.ctx.get_usage() if e.ctx else None
                Output(True).document({"ok": False, "code": "usage", "error": e.format_message(), "usage": usage})
            else:
                # one line, like every other error (click's own form takes four)
                where = e.ctx.command_path if e.ctx else "orderflow"
                message = e.format_message().strip().splitlines() or ["invalid usage"]
                click.echo(f"error: {message[0]} (see `{where} --help`)", err=True)
            sys.exit(e.exit_code)
        except click.ClickException as e:
            if _wants_json(arguments):
                code = "usage" if e.exit_code == 2 else "failed"
                Output(True).document({"ok": False, "code": code, "error": e.format_message()})
            else:
                click.echo(f"error: {e.format_message()}", err=True)
            sys.exit(e.exit_code)
        except click.exceptions.Abort:
            _interrupted(arguments)
        # Without standalone mode click returns what `ctx.exit(code)` was given (--help and --version: 0).
        sys.exit(code if isinstance(code, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with aws_errors():
                result = super().invoke(ctx)
        except OrderflowError as e:
            options = ctx.find_object(Options)
            output = options.output if options else Output(False)
            output.document({"ok": False, "code": e.code, "error": str(e)})
            output.error(str(e))
            sys.exit(e.exit_code)
        except (KeyboardInterrupt, Cancelled):
            _interrupted(sys.argv[1:])
        return result


def _interrupted(arguments: list[str]) -> None:
    if _wants_json(arguments):
        Output(True).document({"ok": False, "code": Cancelled.code, "error": "interrupted"})
    click.echo("interrupted", err=True)
    sys.exit(130)


@click.group(cls=OrderflowGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--stack",
    envvar="ORDERFLOW_STACK",
    default=DEFAULT_STACK,
    show_default=True,
    help="Stack name; any stack but 'default' prefixes every resource name with it.",
)
@click.option("--region", envvar="ORDERFLOW_REGION", help="AWS region (default: AWS_REGION / your profile).")
@click.option("--profile", envvar="ORDERFLOW_PROFILE", help="AWS profile (default: AWS_PROFILE).")
@click.option("--endpoint-url", envvar="ORDERFLOW_ENDPOINT_URL", help="Send every AWS call to this endpoint.")
@click.option(
    "--local", is_flag=True, envvar="ORDERFLOW_LOCAL", help="Target the embedded AWS (orderflow local start)."
)
@click.option(
    "--json", "as_json", is_flag=True, envvar="ORDERFLOW_JSON", help="Print one JSON document and nothing else."
)
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="ORDERFLOW_CONFIG",
    help=f"Settings file (default: ./{settings_file.CONFIG_FILE} if present).",
)
@click.version_option(__version__, prog_name="orderflow")
@click.pass_context
def cli(
    ctx: click.Context,
    stack: str,
    region: str | None,
    profile: str | None,
    endpoint_url: str | None,
    local: bool,
    as_json: bool,
    config: Path | None,
) -> None:
    """Stand up, prove and tear down the SNS -> SQS -> Lambda -> DynamoDB order pipeline."""
    ctx.obj = Options(stack, region, profile, endpoint_url, local, Output(as_json), config)


class Matching(click.ParamType):
    """A string that must match a pattern (an email address, for one)."""

    name = "text"

    def __init__(self, pattern: str, rule: str) -> None:
        self.pattern, self.rule = pattern, rule

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if not re.match(self.pattern, str(value)):
            self.fail(f"{value!r} is not {self.rule}", param, ctx)
        return str(value)


def _envvar(setting: Any) -> str:
    return "ORDERFLOW_" + setting.metadata["flag"][2:].upper().replace("-", "_")


def settings_options(command: Any) -> Any:
    """`up`'s settings flags, generated from StackSettings' fields: one rule for the flag, its variable and the
    settings file. No default here: an unset flag falls back to orderflow.toml, then to the field's default."""
    for setting in reversed(user_settings()):
        rule = setting.metadata
        kind: click.ParamType = (
            click.Choice(rule["choices"])
            if "choices" in rule
            else Matching(rule["pattern"], rule["rule"])
            if "pattern" in rule
            else click.IntRange(rule["min"], rule["max"])
        )
        command = click.option(
            rule["flag"],
            setting.name,
            type=kind,
            default=None,
            envvar=_envvar(setting),
            help=f"{rule['help']} [default: {setting.default}; or {_envvar(setting)}, or {setting.name} in "
            f"{settings_file.CONFIG_FILE}]",
        )(command)
    return command


def _resolve_settings(click_ctx: click.Context, options: Options, flags: dict[str, Any]) -> settings_file.Resolved:
    given = {}
    for setting in user_settings():
        source = click_ctx.get_parameter_source(setting.name)
        if flags[setting.name] is not None:
            label = setting.metadata["flag"] if source == ParameterSource.COMMANDLINE else _envvar(setting)
            given[setting.name] = (flags[setting.name], label)
    return settings_file.resolve(given, settings_file.load(options.stack, options.config))


def export_option(command: Any) -> Any:
    return click.option(
        "--export",
        "export_to",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Also save the report as SVG or HTML (by the file's suffix), for a bug report or a pull request.",
    )(command)


def _check_export(path: Path | None) -> None:
    """Before any work: a file name that cannot be exported to is a usage error."""
    problem = export_format_problem(path) if path is not None else None
    if problem:
        raise click.UsageError(problem)


def _export(path: Path | None, render: Any) -> None:
    if path is None:
        return
    try:
        exported(render, path)
    except OSError as e:
        raise FileProblem(f"Cannot write {path}: {e.strerror or e}") from e


@cli.command()
@click.option("--dry-run", is_flag=True, help="Show the plan; change nothing.")
@settings_options
@click.pass_context
def up(click_ctx: click.Context, dry_run: bool, **flags: Any) -> None:
    """Create or update every resource of the stack (idempotent)."""
    options: Options = click_ctx.obj
    out = options.output
    resolved = _resolve_settings(click_ctx, options, flags)
    ctx = options.context(resolved.settings)
    with out.progress() as progress:
        report = operations.converge(ctx, dry_run=dry_run, progress=progress)
    reverting = {
        name: change for name, change in report.setting_changes.items() if resolved.sources[name] == DEFAULT_SOURCE
    }
    _render_up(out, ctx, report, dry_run, resolved, reverting)
    out.document(
        {
            "ok": True,
            "stack": ctx.config.name,
            "settings": {
                name: {"value": getattr(resolved.settings, name), "source": source}
                for name, source in resolved.sources.items()
            },
            "reverting": [
                {"setting": name, "from": deployed, "to": desired} for name, (deployed, desired) in reverting.items()
            ],
            **report.to_document(),
        }
    )


def _render_settings(out: Output, resolved: settings_file.Resolved | None, reverting: dict[str, Any]) -> None:
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


def _render_up(
    out: Output,
    ctx: Context,
    report: operations.UpReport,
    dry_run: bool,
    resolved: settings_file.Resolved | None = None,
    reverting: dict[str, Any] | None = None,
) -> None:
    for warning in report.warnings:
        out.warn(warning)
    _render_settings(out, resolved, reverting or {})
    if dry_run:
        for step in report.steps:
            c = step.change
            out.line(f"{MARKS.get(c.action, c.action):<24} {c.kind} [bold]{c.name}[/]")
            _render_operations(out, c.details if c.action == "update" else (), c.operations)
        changes = sum(1 for s in report.steps if s.change.action != "unchanged")
        out.line(f"dry run: {changes} change(s) planned, nothing was changed")
    else:
        for r in report.results:
            timing = f" [dim]({r.seconds:.1f}s)[/]" if r.outcome != "unchanged" else ""
            out.line(f"{MARKS.get(r.outcome, r.outcome):<24} {r.kind} [bold]{r.name}[/]{timing}")
            _render_operations(out, r.details if r.outcome == "updated" else (), r.operations)
        out.line(f"stack [bold]{ctx.config.name}[/] is up in {ctx.aws.region} (account {ctx.aws.account})")


def _render_operations(out: Output, reasons: tuple[str, ...], ops: tuple[Any, ...]) -> None:
    """Why, then the operations themselves (planned, or run): what `--dry-run` shows is what runs."""
    for reason in reasons:
        out.line(f"      {escape(reason)}")
    for op in ops:
        out.line(f"      [dim]→ {escape(op.describe())}[/]")


@cli.command()
@click.option("--yes", "-y", is_flag=True, help="Delete the table (and its data) without asking.")
@click.option("--keep-data", is_flag=True, help="Keep the DynamoDB table and its orders.")
@click.pass_obj
def down(options: Options, yes: bool, keep_data: bool) -> None:
    """Remove every resource this stack owns (and nothing else)."""
    out = options.output
    ctx = options.context()
    steps = operations.plan_down(ctx, keep_data=keep_data)
    table_step = next(s for s in steps if s.resource.key == "table")
    if table_step.action == "delete" and not yes:
        items = (table_step.observed.state.get("item_count") if table_step.observed else None) or 0
        question = f"Delete table {table_step.name!r} and its orders (about {items} item(s))?"
        if out.as_json or not sys.stdin.isatty():
            raise NeedsConfirmation(f"{question} Refusing without --yes (or keep it with --keep-data)")
        if not click.confirm(question, default=False, err=True):
            raise NeedsConfirmation("Nothing was deleted. Use --keep-data to remove everything but the table")
    with out.progress() as progress:
        results = operations.teardown(ctx, steps, progress)
    for r in results:
        out.line(f"{MARKS.get(r.outcome, r.outcome):<32} {r.kind} [bold]{r.name}[/]")
    foreign = [r for r in results if r.outcome == "not ours, left alone"]
    out.line(
        f"stack [bold]{ctx.config.name}[/] is down"
        + (f" ({len(foreign)} foreign resource(s) left alone)" if foreign else "")
    )
    out.document(
        {
            "ok": True,
            "stack": ctx.config.name,
            "results": [{"resource": r.key, "name": r.name, "outcome": r.outcome} for r in results],
        }
    )


@cli.command()
@click.pass_obj
def status(options: Options) -> None:
    """Every resource of the stack, its state and the queue depths."""
    out = options.output
    ctx = options.context()
    rows = operations.inventory(ctx)
    colour = {"exists": "green", "missing": "dim", "foreign": "magenta", "owner unknown": "yellow"}
    out.table(
        f"stack {ctx.config.name} in {ctx.aws.region}",
        ["resource", "name", "state", "messages", "ARN"],
        [
            [
                r["kind"],
                r["name"],
                f"[{colour[r['state']]}]{r['state']}[/]" + (f" ({r['detail']})" if r.get("detail") else ""),
                f"{r['messages']} ({r['in_flight']} in flight)" if "messages" in r else "",
                r["arn"],
            ]
            for r in rows
        ],
    )
    out.document({"ok": True, "stack": ctx.config.name, "region": ctx.aws.region, "resources": rows})


@cli.command("publish-test")
@click.option("--order-id", help="Use this orderId (default: a fresh unique one).")
@click.option(
    "--file",
    "order_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Publish the order(s) in this JSON file (an object or an array), validated first.",
)
@click.option("--count", type=click.IntRange(1, 100_000), default=1, show_default=True, help="Publish N sample orders.")
@click.pass_obj
def publish_test(options: Options, order_id: str | None, order_file: Path | None, count: int) -> None:
    """Publish the guide's sample order (with a fresh orderId and timestamp) to the stack's topic."""
    out = options.output
    if order_file and (order_id is not None or count != 1):
        raise ConfigError("--file cannot be combined with --order-id or --count")
    if order_id is not None and count != 1:
        raise ConfigError("--order-id names one order; it cannot be combined with --count")
    if order_file:
        orders = publish.read_order_file(order_file)
    else:
        orders = [publish.sample_order(order_id) for _ in range(count)]
    aws = options.connect()
    config = StackConfig(options.stack)
    published = publish.publish_recorded(aws, config, orders)
    for p in published[:20]:
        out.line(f"published order [bold]{p.order_id}[/] as SNS message {p.message_id}")
    if len(published) > 20:
        out.line(f"… and {len(published) - 20} more")
    out.line(f"{len(published)} order(s) sent to {config.topic_name}; check them with `orderflow verify`")
    out.document(
        {
            "ok": True,
            "stack": config.name,
            "published": [{"orderId": p.order_id, "messageId": p.message_id} for p in published],
        }
    )


@cli.command()
@click.option("--order-id", help="The order to follow (default: the last one publish-test sent on this stack).")
@click.option(
    "--timeout",
    type=FiniteFloat(0, 3600),
    default=60.0,
    show_default=True,
    help="Seconds to wait for every hop to pass.",
)
@export_option
@click.pass_obj
def verify(options: Options, order_id: str | None, timeout: float, export_to: Path | None) -> None:
    """Prove each hop for one order, with evidence; exit 1 naming the first broken hop."""
    out = options.output
    _check_export(export_to)
    aws = options.connect()
    config = StackConfig(options.stack)
    remembered = {p.order_id: p for p in publish.recall(aws, config)}
    if order_id is None:
        if not remembered:
            raise ConfigError("No order to verify: run `orderflow publish-test` first, or pass --order-id")
        order_id = list(remembered)[-1]
    with out.waiting(f"verifying order {order_id} …"):
        report = verify_flow.verify(aws, config, order_id, remembered.get(order_id), timeout=timeout)
    _render_verify(out, report)
    _export(export_to, lambda o: _render_verify(o, report))
    out.document(
        {
            "ok": report.passed,
            **({} if report.passed else {"code": "check-failed"}),
            "orderId": report.order_id,
            "seconds": round(report.seconds, 3),
            "checks": [
                {
                    "hop": c.hop,
                    "passed": c.passed,
                    "evidence": c.evidence,
                    "hint": c.hint,
                    "seconds": None if c.seconds is None else round(c.seconds, 3),
                }
                for c in report.checks
            ],
        }
    )
    if not report.passed:
        failure = report.first_failure
        if failure is not None:
            out.error(
                f"hop '{failure.hop}' is broken: {failure.evidence}" + (f" — {failure.hint}" if failure.hint else "")
            )
        raise SystemExit(1)


def _render_verify(out: Output, report: verify_flow.VerifyReport) -> None:
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
    if report.passed:
        out.line(f"[green]every hop proven[/] for order {report.order_id} in {report.seconds:.2f}s")


@cli.command()
@click.option("--since", default="10m", show_default=True, help="How far back: 30s, 10m, 2h, 1d.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until interrupted.")
@click.pass_obj
def logs(options: Options, since: str, follow: bool) -> None:
    """The function's CloudWatch log events, oldest first; handler lines rendered readably."""
    out = options.output
    aws = options.connect()
    config = StackConfig(options.stack)
    start_ms = int(time.time() * 1000) - logs_flow.parse_since(since) * 1000
    collected: list[logs_flow.LogEvent] = []
    try:
        for batch in logs_flow.follow(aws, config, start_ms):
            for event in batch:
                collected.append(event)
                stamp = datetime.fromtimestamp(event.timestamp / 1000, timezone.utc).strftime("%H:%M:%S.%f")[:-3]
                out.line(f"[dim]{stamp}[/] {escape(logs_flow.render(event))}")
            if not follow:
                break
    except KeyboardInterrupt:
        pass  # the way to end --follow
    if not collected:
        out.line(f"no log events in {config.log_group_name} in the last {since}")
    out.document(
        {
            "ok": True,
            "logGroup": config.log_group_name,
            "events": [
                {"timestamp": e.timestamp, "stream": e.stream, "message": e.message, "record": e.handler_record}
                for e in collected
            ],
        }
    )


@cli.command()
@click.option(
    "--interval",
    type=FiniteFloat(1, 3600),
    default=5.0,
    show_default=True,
    help="Seconds between refreshes (and the sparkline's bucket).",
)
@click.option("--since", default="5m", show_default=True, help="The window counts cover: 30s, 5m, 1h, 1d.")
@click.option("--once", is_flag=True, help="Print one snapshot and exit (implied by --json).")
@click.pass_obj
def watch(options: Options, interval: float, since: str, once: bool) -> None:
    """Live dashboard: queue, dead letters, invocations, errors, throttles, duration, orders written, alarm."""
    out = options.output
    window_s = logs_flow.parse_since(since)
    bucket_s = max(1, round(interval))
    watch_flow.check_window(window_s, bucket_s)
    aws = options.connect()
    config = StackConfig(options.stack)

    def take() -> tuple[watch_flow.Snapshot, str]:
        return watch_flow.snapshot(aws, config, window_s, bucket_s), datetime.now(timezone.utc).strftime("%H:%M:%S")

    snapshot, taken_at = take()
    if once or out.as_json:
        show_snapshot(out, snapshot, config.name, taken_at)
        out.document(snapshot.to_document())
        return
    keep_watching(out, take, (snapshot, taken_at), config.name, interval)


@cli.command()
@click.argument("order_id", required=False)
@click.option("--message-id", help="Trace by SNS or SQS message id (an order whose body never parsed has no orderId).")
@click.option("--since", default="1d", show_default=True, help="How far back to search the function's logs.")
@export_option
@click.pass_obj
def trace(options: Options, order_id: str | None, message_id: str | None, since: str, export_to: Path | None) -> None:
    """The story of one order: published, every delivery attempt, the write, the move to the DLQ."""
    out = options.output
    if (order_id is None) == (message_id is None):
        raise click.UsageError("give an ORDER_ID or --message-id (one of them)")
    _check_export(export_to)
    start_ms = int(time.time() * 1000) - logs_flow.parse_since(since) * 1000
    aws = options.connect()
    config = StackConfig(options.stack)
    with out.waiting("reading the order's story …"):
        story = trace_flow.trace(aws, config, order_id, message_id, start_ms)
    if not story.found:
        raise NotFoundError(
            f"No trace of {'order ' + order_id if order_id else 'message ' + str(message_id)} on stack "
            f"{config.name} in the last {since}: not in the publish journal, not in {config.log_group_name}"
        )
    _render_trace(out, story)
    _export(export_to, lambda o: _render_trace(o, story))
    out.document(story.to_document())


def _render_trace(out: Output, story: trace_flow.Trace) -> None:
    if out.as_json:
        return
    out.out.print(trace_table(story))
    if story.stored is not None:
        out.line(f"stored now: {escape(json.dumps(story.stored, sort_keys=True, default=str))}")
    elif story.order_id:
        out.line(f"not stored in the table (no item with orderId {escape(story.order_id)})")
    if any(e.estimated for e in story.events):
        out.line("[dim]~ estimated: SQS records no time for a move to the DLQ or a redrive[/]")


# no_args_is_help=False: a bare `orderflow dlq` is a usage error in one line, as in every click version (8.2 would
# print the whole help as the error's message).
@cli.group(no_args_is_help=False)
def dlq() -> None:
    """Inspect or redrive the dead-letter queue."""


@dlq.command("show")
@click.option("--limit", type=click.IntRange(1, 10_000), default=100, show_default=True)
@click.pass_obj
def dlq_show(options: Options, limit: int) -> None:
    """List dead letters without removing them."""
    out = options.output
    aws = options.connect()
    config = StackConfig(options.stack)
    found = dlq_flow.show(aws, config, limit=limit)
    letters = found.letters
    unread = f"; {found.unread} more not shown (in flight or over --limit)" if found.unread else ""
    out.table(
        f"{config.dlq_name}: {len(letters)} dead letter(s) shown of {found.counted} counted by SQS{unread}",
        ["orderId", "receives", "first received", "body"],
        [
            [lt.order_id or "[dim]unparseable[/]", str(lt.receive_count), lt.first_received or "", escape(lt.excerpt)]
            for lt in letters
        ],
    )
    out.document(
        {
            "ok": True,
            "queue": config.dlq_name,
            "counted": found.counted,
            "inFlight": found.in_flight,
            "letters": [
                {
                    "messageId": lt.message_id,
                    "orderId": lt.order_id,
                    "receiveCount": lt.receive_count,
                    "firstReceived": lt.first_received,
                    "excerpt": lt.excerpt,
                }
                for lt in letters
            ],
        }
    )


@dlq.command("redrive")
@click.pass_obj
def dlq_redrive(options: Options) -> None:
    """Move every dead letter back to the source queue."""
    out = options.output
    aws = options.connect()
    config = StackConfig(options.stack)
    result = dlq_flow.redrive(aws, config)
    out.line(f"moved {result.moved} message(s) from {config.dlq_name} back to {config.queue_name} ({result.method})")
    out.document({"ok": True, "moved": result.moved, "method": result.method})


@cli.group(no_args_is_help=False)
def local() -> None:
    """The embedded AWS: moto's server on 127.0.0.1 plus orderflow's docker-less Lambda runtime."""


def realistic_options(command: Any) -> Any:
    """--realistic and --time-scale, shared by `local start` and `demo`."""
    command = click.option(
        "--time-scale",
        type=FiniteFloat(0.001, 10),
        default=1.0,
        show_default=True,
        envvar="ORDERFLOW_TIME_SCALE",
        help=(
            "AWS's durations times this (1.0 = AWS's pace; 0.05 = twenty times faster): CloudWatch's minute "
            "(metrics, alarm evaluation) always, the control plane's delays with --realistic."
        ),
    )(command)
    return click.option(
        "--realistic",
        is_flag=True,
        envvar="ORDERFLOW_REALISTIC",
        help="Behave like AWS's control plane: slow, eventually consistent (docs/fidelity.md lists each delay).",
    )(command)


@local.command("start")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=control.DEFAULT_PORT,
    show_default=True,
    envvar="ORDERFLOW_LOCAL_PORT",
)
@realistic_options
@click.pass_obj
def local_start(options: Options, port: int, realistic: bool, time_scale: float) -> None:
    """Start the embedded AWS in the background and wait until it answers."""
    out = options.output
    with out.waiting("starting the embedded AWS …"):
        status = control.start(port, time_scale, realistic)
    if status.note:
        out.warn(status.note)
    assert status.server is not None
    out.line(
        f"embedded AWS running at [bold]{status.server.endpoint}[/] (pid {status.server.pid}); log: {state.log_file()}"
    )
    if status.server.realistic:
        out.line(f"realistic control plane: AWS's delays x{status.server.time_scale:g} (docs/fidelity.md)")
    if status.server.time_scale != 1.0:
        out.line(f"CloudWatch's minute (metrics, alarms) lasts {60 * status.server.time_scale:g} s")
    out.line("use it with `orderflow --local …`; stop it with `orderflow local stop`")
    out.document(
        {
            "ok": True,
            "endpoint": status.server.endpoint,
            "pid": status.server.pid,
            "log": str(state.log_file()),
            "time_scale": status.server.time_scale,
            "realistic": status.server.realistic,
        }
    )


@local.command("stop")
@click.pass_obj
def local_stop(options: Options) -> None:
    """Stop the background embedded AWS."""
    status = control.stop()
    options.output.line(status.note)
    options.output.document({"ok": True, "note": status.note})


@local.command("status")
@click.pass_obj
def local_status(options: Options) -> None:
    """Is the embedded AWS running, and where."""
    status = control.status()
    server = status.server
    where = f" at {server.endpoint} (pid {server.pid})" if status.running and server else ""
    options.output.line(f"embedded AWS: {status.note}{where}")
    options.output.document(
        {
            "ok": status.running,  # exit 1 when it is not running: `ok` says the same
            **({} if status.running else {"code": "not-running"}),
            "running": status.running,
            "note": status.note,
            "endpoint": server.endpoint if status.running and server else None,
            "pid": server.pid if status.running and server else None,
        }
    )
    if not status.running:
        raise SystemExit(1)


@cli.command()
@click.option(
    "--timeout",
    type=FiniteFloat(1, 600),
    default=60.0,
    show_default=True,
    help="Seconds to wait for the order to pass every hop.",
)
@realistic_options
@click.pass_obj
def demo(options: Options, timeout: float, realistic: bool, time_scale: float) -> None:
    """The whole guide on an embedded AWS, start to finish: up, publish, verify, show, down."""
    from orderflow.local.server.embedded import EmbeddedAws

    out = options.output
    config = StackConfig(options.stack)
    out.line("[bold]orderflow demo[/]: the seed guide's ten steps on an embedded AWS (no account, no Docker)")
    with out.waiting("starting the embedded AWS …"):
        embedded = EmbeddedAws(port=0, time_scale=time_scale, realistic=realistic).start()
    try:
        pace = f" (realistic control plane, AWS's delays x{time_scale:g})" if realistic else ""
        out.line(f"[bold]0.[/] embedded AWS listening on {embedded.endpoint}{pace}")
        aws = connect(region=state.LOCAL_REGION, endpoint_url=embedded.endpoint, credentials=state.LOCAL_CREDENTIALS)
        ctx = Context(aws=aws, config=config, time_scale=time_scale if realistic else 0.0)
        out.line(
            "[bold]1-8.[/] orderflow up: table, topic, queues, subscription + queue policy, role, function, trigger"
        )
        with out.progress() as progress:
            up_report = operations.converge(ctx, progress=progress)
        _render_up(out, ctx, up_report, dry_run=False)
        out.line("[bold]9.[/] publish the guide's sample order to the topic")
        [published] = publish.publish_orders(aws, config, [publish.sample_order()])
        out.line(f"   order [bold]{published.order_id}[/] published as SNS message {published.message_id}")
        out.line("[bold]10.[/] verify every hop")
        with out.waiting("following the order …"):
            report = verify_flow.verify(aws, config, published.order_id, published, timeout=timeout)
        _render_verify(out, report)
        item = verify_flow.stored_order(aws, config, published.order_id)
        out.line(f"   the item in {config.table_name}: {escape(json.dumps(item, sort_keys=True))}")
        lines = logs_flow.fetch_events(aws, config, published.published_ms - 60_000)
        out.line(f"   the function's log lines in {config.log_group_name}:")
        for event in lines[-8:]:
            out.line(f"     {escape(logs_flow.render(event))}")
        out.line("[bold]clean up.[/] orderflow down")
        with out.progress() as progress:
            down_results = operations.teardown(ctx, progress=progress)
        left = [r for r in operations.inventory(ctx) if r["state"] != "missing"]
        out.line(f"   removed {sum(r.outcome == 'deleted' for r in down_results)} resources; {len(left)} left behind")
    finally:
        embedded.stop()
    ok = report.passed and not left
    out.document(
        {
            "ok": ok,
            **({} if ok else {"code": "check-failed"}),
            "orderId": published.order_id,
            "item": item,
            "checks": [{"hop": c.hop, "passed": c.passed, "evidence": c.evidence} for c in report.checks],
        }
    )
    if not ok:
        failure = report.first_failure
        out.error(
            f"demo failed: hop '{failure.hop}': {failure.evidence}" if failure else "demo failed: resources left behind"
        )
        raise SystemExit(1)
    out.line("[green bold]demo passed[/]: the order went SNS → SQS → Lambda → DynamoDB, with logs; nothing left behind")


def main() -> None:
    cli(prog_name="orderflow")


if __name__ == "__main__":
    main()
