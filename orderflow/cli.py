"""The orderflow command line: parse, call, render. No boto3 here."""

from __future__ import annotations

import contextlib
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
from click.core import ParameterSource
from rich.markup import escape

from orderflow import __version__, settings_file
from orderflow.aws import connect
from orderflow.commandline import (
    COMMAND_ORDER,
    FiniteFloat,
    Options,
    OrderflowGroup,
    check_export,
    export,
    export_option,
    realistic_options,
    resolve_settings,
    settings_options,
)
from orderflow.commands import local, policy_command, preflight_quietly
from orderflow.errors import Cancelled, ConfigError, NeedsConfirmation, NotFoundError
from orderflow.flow import advice, publish
from orderflow.flow import demo as demo_flow
from orderflow.flow import dlq as dlq_flow
from orderflow.flow import logs as logs_flow
from orderflow.flow import trace as trace_flow
from orderflow.flow import verify as verify_flow
from orderflow.flow import watch as watch_flow
from orderflow.iac import export as iac_export
from orderflow.local.server import state
from orderflow.provision import operations
from orderflow.provision.base import Context
from orderflow.provision.lock import stack_lock
from orderflow.render import (
    DemoNarration,
    render_dead_letters,
    render_down,
    render_exported,
    render_published,
    render_status,
    render_trace,
    render_up,
    render_verify,
)
from orderflow.stack import DEFAULT_STACK, StackConfig, StackSettings
from orderflow.ui import Output, keep_watching, show_snapshot

__all__ = ["COMMAND_ORDER", "cli", "main"]


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
@click.option(
    "--from-cloudformation",
    metavar="STACK",
    envvar="ORDERFLOW_FROM_CLOUDFORMATION",
    help="Prove a stack CloudFormation built: resolve its resources from this CloudFormation stack.",
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
    from_cloudformation: str | None,
) -> None:
    """Stand up, prove and tear down the SNS -> SQS -> Lambda -> DynamoDB order pipeline."""
    from_env = ctx.get_parameter_source("config") == ParameterSource.ENVIRONMENT
    config_label = "ORDERFLOW_CONFIG" if from_env else "--config"
    ctx.obj = Options(
        stack, region, profile, endpoint_url, local, Output(as_json), config, from_cloudformation, config_label
    )


NO_WAIT = click.option("--no-wait", is_flag=True, help="Fail at once if another up or down is changing the stack.")


@cli.command()
@click.option("--dry-run", is_flag=True, help="Show the plan; change nothing.")
@NO_WAIT
@settings_options
@click.pass_context
def up(click_ctx: click.Context, dry_run: bool, no_wait: bool, **flags: Any) -> None:
    """Create or update every resource of the stack (idempotent)."""
    options: Options = click_ctx.obj
    out = options.output
    resolved = resolve_settings(click_ctx, options, flags)
    resolved.validate()  # before anything is read: a conflict names the flags and the file it comes from
    if note := options.runtime_note(resolved.settings.runtime):
        out.warn(note)
    ctx = options.context(resolved.settings)
    if not dry_run:
        preflight_quietly(options, ctx, "up")
    held = contextlib.nullcontext() if dry_run else stack_lock(ctx, "up", wait=not no_wait, on_wait=out.warn)
    try:
        with held, out.progress() as progress:
            report = operations.converge(ctx, dry_run=dry_run, progress=progress)
    except (KeyboardInterrupt, Cancelled):
        if not dry_run:
            out.warn(operations.left_part_way(ctx))
        raise
    reverting = report.reverting(resolved.sources)
    render_up(out, ctx, report, dry_run, resolved, reverting)
    reverted = [{"setting": name, "from": old, "to": new} for name, (old, new) in reverting.items()]
    document = {"ok": True, "stack": ctx.config.name, "settings": resolved.to_document(), "reverting": reverted}
    out.document(document | report.to_document())


@cli.command()
@click.option("--yes", "-y", is_flag=True, help="Delete the table and the queues' messages without asking.")
@click.option("--keep-data", is_flag=True, help="Keep the DynamoDB table, and every queue holding messages.")
@NO_WAIT
@click.pass_obj
def down(options: Options, yes: bool, keep_data: bool, no_wait: bool) -> None:
    """Remove every resource this stack owns (and nothing else)."""
    out = options.output
    ctx = options.context()
    with stack_lock(ctx, "down", wait=not no_wait, on_wait=out.warn):
        _down(options, ctx, yes, keep_data)


def _down(options: Options, ctx: Context, yes: bool, keep_data: bool) -> None:
    out = options.output
    steps = operations.plan_down(ctx, keep_data=keep_data)
    question = operations.data_question(steps)
    if question and not yes:
        if out.as_json or not sys.stdin.isatty():
            raise NeedsConfirmation(f"{question} Refusing without --yes (or keep them with --keep-data)")
        if not click.confirm(question, default=False, err=True):
            raise NeedsConfirmation(
                "Nothing was deleted. Use --keep-data to remove everything but the table and the queues holding orders"
            )
    with out.progress() as progress:
        results = operations.teardown(ctx, steps, progress)
    render_down(out, ctx, results)
    out.document({"ok": True, "stack": ctx.config.name, "results": [r.to_document() for r in results]})


@cli.command("export")
@click.option("--format", "fmt", type=click.Choice(iac_export.FORMATS), required=True, help="What to write.")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("orderflow-export"),
    show_default=True,
    help="Directory for the template and the code.",
)
@click.option("--upload-to", metavar="BUCKET", help="Upload the code package to this S3 bucket (cloudformation, sam).")
@click.option("--force", is_flag=True, help="Overwrite the files of an earlier export.")
@settings_options
@click.pass_context
def export_stack(
    click_ctx: click.Context, fmt: str, output: Path, upload_to: str | None, force: bool, **flags: Any
) -> None:
    """Write the stack as CloudFormation, SAM or Terraform: what `up` builds, with the same settings."""
    options: Options = click_ctx.obj
    out = options.output
    resolved = resolve_settings(click_ctx, options, flags)
    for warning in resolved.validate():
        out.warn(warning)
    config = options.stack_config(options.connect() if options.from_cloudformation else None, resolved.settings)
    exported = iac_export.export(config, fmt, output, force, upload_to, options.connect)
    render_exported(out, exported, iac_export.next_steps(exported, config.name))
    out.document({"ok": True, "stack": config.name, "settings": resolved.to_document(), **exported.to_document()})


@cli.command()
@click.pass_obj
def status(options: Options) -> None:
    """Every resource of the stack, its state and the queue depths."""
    out = options.output
    ctx = options.context()
    rows, warnings = operations.inventory(ctx), advice.stack_warnings(ctx)
    render_status(out, ctx, rows, warnings)
    document = {"ok": True, "stack": ctx.config.name, "region": ctx.aws.region, "resources": rows}
    document["warnings"] = warnings
    out.document(document | ({"managedBy": ctx.config.managed_by} if ctx.config.managed_by else {}))


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
    config = options.stack_config(aws)
    published = publish.publish_recorded(aws, config, orders)
    render_published(out, config, published)
    out.document(publish.to_document(config, published))


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
    check_export(export_to)
    aws = options.connect()
    config = options.stack_config(aws)
    remembered = {p.order_id: p for p in publish.recall(aws, config)}
    flying = publish.in_flight(aws, config)
    if order_id is None:
        if not remembered and not flying:
            raise ConfigError("No order to verify: run `orderflow publish-test` first, or pass --order-id")
        order_id = list(remembered or flying)[-1]
    with out.waiting(f"verifying order {order_id} …"):
        report = verify_flow.verify(
            aws, config, order_id, remembered.get(order_id), timeout=timeout, in_flight=order_id in flying
        )
    render_verify(out, report)
    export(export_to, lambda o: render_verify(o, report))
    out.document(report.to_document())
    if not report.passed:
        failure = report.first_failure
        if failure is not None:
            out.error(
                f"hop '{failure.hop}' is broken: {failure.evidence}" + (f" — {failure.hint}" if failure.hint else "")
            )
        raise SystemExit(1)


@cli.command()
@click.option("--since", default="10m", show_default=True, help="How far back: 30s, 10m, 2h, 1d.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until interrupted.")
@click.pass_obj
def logs(options: Options, since: str, follow: bool) -> None:
    """The function's CloudWatch log events, oldest first; handler lines rendered readably."""
    out = options.output
    aws = options.connect()
    config = options.stack_config(aws)
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
    out.document({"ok": True, "logGroup": config.log_group_name, "events": [e.to_document() for e in collected]})


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
@click.pass_context
def watch(click_ctx: click.Context, interval: float, since: str, once: bool) -> None:
    """Live dashboard: queue, dead letters, invocations, errors, throttles, duration, orders written, alarm."""
    options: Options = click_ctx.obj
    out = options.output
    window_s = logs_flow.parse_since(since, watch_flow.WINDOW_LIMIT)
    bucket_s = max(1, round(interval))
    given = click_ctx.get_parameter_source("interval") != ParameterSource.DEFAULT
    watch_flow.check_window(window_s, bucket_s, interval_given=given)
    aws = options.connect()
    config = options.stack_config(aws)

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
    if (order_id or message_id or "").strip() == "":
        raise click.UsageError("the ORDER_ID or --message-id to trace is empty")
    check_export(export_to)
    start_ms = int(time.time() * 1000) - logs_flow.parse_since(since) * 1000
    aws = options.connect()
    config = options.stack_config(aws)
    with out.waiting("reading the order's story …"):
        story = trace_flow.trace(aws, config, order_id, message_id, start_ms)
    if not story.found:
        flying = order_id in publish.in_flight(aws, config) if order_id else False
        raise NotFoundError(
            f"No trace of {'order ' + order_id if order_id else 'message ' + str(message_id)} on stack "
            f"{config.name} in the last {since}: "
            + ("it was in flight when publish-test was interrupted, and may never have been sent" if flying else "")
            + ("" if flying else f"not in the publish journal, not in {config.log_group_name}")
        )
    render_trace(out, story)
    export(export_to, lambda o: render_trace(o, story))
    out.document(story.to_document())


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
    config = options.stack_config(aws)
    found = dlq_flow.show(aws, config, limit=limit)
    render_dead_letters(out, config, found)
    out.document(found.to_document(config.dlq_name))


@dlq.command("redrive")
@click.pass_obj
def dlq_redrive(options: Options) -> None:
    """Move every dead letter back to the source queue."""
    out = options.output
    aws = options.connect()
    config = options.stack_config(aws)
    result = dlq_flow.redrive(aws, config)
    out.line(f"moved {result.moved} message(s) from {config.dlq_name} back to {config.queue_name} ({result.method})")
    out.document({"ok": True, "moved": result.moved, "method": result.method})


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
    out.line("[bold]orderflow demo[/]: the seed guide's ten steps on an embedded AWS (no account, no Docker)")
    if note := options.runtime_note(StackSettings().runtime, embedded=True):
        out.warn(note)
    with out.waiting("starting the embedded AWS …"):
        embedded = EmbeddedAws(port=0, time_scale=time_scale, realistic=realistic).start()
    try:
        pace = f" (realistic control plane, AWS's delays x{time_scale:g})" if realistic else ""
        out.line(f"[bold]0.[/] embedded AWS listening on {embedded.endpoint}{pace}")
        aws = connect(region=state.LOCAL_REGION, endpoint_url=embedded.endpoint, credentials=state.LOCAL_CREDENTIALS)
        ctx = Context(aws=aws, config=StackConfig(options.stack), time_scale=time_scale if realistic else 0.0)
        report = demo_flow.run(ctx, timeout, DemoNarration(out))
    finally:
        embedded.stop()
    out.document(report.to_document())
    if report.failure:
        out.error(f"demo failed: {report.failure}")
        raise SystemExit(1)
    out.line("[green bold]demo passed[/]: the order went SNS → SQS → Lambda → DynamoDB, with logs; nothing left behind")


cli.add_command(policy_command)
cli.add_command(local)


def main() -> None:
    cli(prog_name="orderflow")


if __name__ == "__main__":
    main()
