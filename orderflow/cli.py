"""The orderflow command line: parse, call, render. No boto3 here."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import click

from orderflow import __version__
from orderflow.aws import Aws, aws_errors, connect
from orderflow.errors import OrderflowError
from orderflow.provision import operations
from orderflow.provision.base import Context
from orderflow.stack import ARCHITECTURES, DEFAULT_STACK, SUPPORTED_RUNTIMES, StackConfig, StackSettings
from orderflow.ui import MARKS, Output

DEFAULTS = StackSettings()


@dataclass
class Options:
    stack: str
    region: str | None
    profile: str | None
    endpoint_url: str | None
    local: bool
    output: Output

    def connect(self) -> Aws:
        if self.local:
            from orderflow.local.state import LOCAL_CREDENTIALS, LOCAL_REGION, running_endpoint

            endpoint = self.endpoint_url or running_endpoint()
            return connect(region=self.region or LOCAL_REGION, endpoint_url=endpoint, credentials=LOCAL_CREDENTIALS)
        return connect(region=self.region, profile=self.profile, endpoint_url=self.endpoint_url)

    def context(self, settings: StackSettings | None = None) -> Context:
        config = StackConfig(self.stack, settings or StackSettings())
        return Context(aws=self.connect(), config=config)


class OrderflowGroup(click.Group):
    """Turns every expected failure into one line on stderr and a non-zero exit, never a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            with aws_errors():
                return super().invoke(ctx)
        except OrderflowError as e:
            options = ctx.find_object(Options)
            output = options.output if options else Output(False)
            output.document({"ok": False, "error": str(e)})
            output.error(str(e))
            ctx.exit(e.exit_code)
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)


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
) -> None:
    """Stand up, prove and tear down the SNS -> SQS -> Lambda -> DynamoDB order pipeline."""
    ctx.obj = Options(stack, region, profile, endpoint_url, local, Output(as_json))


@cli.command()
@click.option("--dry-run", is_flag=True, help="Show the plan; change nothing.")
@click.option(
    "--runtime",
    type=click.Choice(SUPPORTED_RUNTIMES),
    default=DEFAULTS.runtime,
    show_default=True,
    envvar="ORDERFLOW_RUNTIME",
)
@click.option(
    "--architecture",
    type=click.Choice(ARCHITECTURES),
    default=DEFAULTS.architecture,
    show_default=True,
    envvar="ORDERFLOW_ARCHITECTURE",
)
@click.option(
    "--function-timeout",
    type=int,
    default=DEFAULTS.function_timeout,
    show_default=True,
    envvar="ORDERFLOW_FUNCTION_TIMEOUT",
    help="Lambda timeout, seconds.",
)
@click.option(
    "--memory",
    type=int,
    default=DEFAULTS.memory_size,
    show_default=True,
    envvar="ORDERFLOW_MEMORY",
    help="Lambda memory, MB.",
)
@click.option(
    "--visibility-timeout",
    type=int,
    default=DEFAULTS.visibility_timeout,
    show_default=True,
    envvar="ORDERFLOW_VISIBILITY_TIMEOUT",
    help="Queue visibility timeout, seconds (>= 6 x function timeout).",
)
@click.option(
    "--max-receive-count",
    type=int,
    default=DEFAULTS.max_receive_count,
    show_default=True,
    envvar="ORDERFLOW_MAX_RECEIVE_COUNT",
    help="Receives before a message moves to the DLQ.",
)
@click.option("--batch-size", type=int, default=DEFAULTS.batch_size, show_default=True, envvar="ORDERFLOW_BATCH_SIZE")
@click.option(
    "--batching-window",
    type=int,
    default=DEFAULTS.batching_window,
    show_default=True,
    envvar="ORDERFLOW_BATCHING_WINDOW",
    help="Seconds to gather a batch.",
)
@click.pass_obj
def up(
    options: Options,
    dry_run: bool,
    runtime: str,
    architecture: str,
    function_timeout: int,
    memory: int,
    visibility_timeout: int,
    max_receive_count: int,
    batch_size: int,
    batching_window: int,
) -> None:
    """Create or update every resource of the stack (idempotent)."""
    out = options.output
    settings = StackSettings(
        runtime=runtime,
        architecture=architecture,
        function_timeout=function_timeout,
        memory_size=memory,
        visibility_timeout=visibility_timeout,
        max_receive_count=max_receive_count,
        batch_size=batch_size,
        batching_window=batching_window,
    )
    ctx = options.context(settings)
    with out.waiting("reading the stack …"):
        report = operations.converge(ctx, dry_run=dry_run, on_progress=out.progress())
    for warning in report.warnings:
        out.warn(warning)
    if dry_run:
        for step in report.steps:
            c = step.change
            out.line(f"{MARKS.get(c.action, c.action):<24} {c.kind} [bold]{c.name}[/]")
            for detail in c.details if c.action == "update" else ():
                out.line(f"      {detail}")
        changes = sum(1 for s in report.steps if s.change.action != "unchanged")
        out.line(f"dry run: {changes} change(s) planned, nothing was changed")
    else:
        for r in report.results:
            timing = f" [dim]({r.seconds:.1f}s)[/]" if r.outcome != "unchanged" else ""
            out.line(f"{MARKS.get(r.outcome, r.outcome):<24} {r.kind} [bold]{r.name}[/]{timing}")
            for detail in r.details if r.outcome == "updated" else ():
                out.line(f"      {detail}")
        out.line(f"stack [bold]{ctx.config.name}[/] is up in {ctx.aws.region} (account {ctx.aws.account})")
    out.document(
        {
            "ok": True,
            "stack": ctx.config.name,
            "dry_run": dry_run,
            "warnings": report.warnings,
            "plan": [
                {
                    "resource": s.change.key,
                    "kind": s.change.kind,
                    "name": s.change.name,
                    "action": s.change.action,
                    "details": list(s.change.details),
                }
                for s in report.steps
            ],
            "results": [
                {"resource": r.key, "name": r.name, "outcome": r.outcome, "seconds": round(r.seconds, 3)}
                for r in report.results
            ],
        }
    )


@cli.command()
@click.option("--yes", "-y", is_flag=True, help="Delete the table (and its data) without asking.")
@click.option("--keep-data", is_flag=True, help="Keep the DynamoDB table and its orders.")
@click.pass_obj
def down(options: Options, yes: bool, keep_data: bool) -> None:
    """Remove every resource this stack owns (and nothing else)."""
    out = options.output
    ctx = options.context()
    steps = operations.plan_teardown(ctx, keep_data=keep_data)
    table_step = next(s for s in steps if s.resource.key == "table")
    if table_step.action == "delete" and not yes:
        items = (table_step.observed.state.get("item_count") if table_step.observed else None) or 0
        question = f"Delete table {table_step.name!r} and its orders (about {items} items)?"
        if out.as_json or not sys.stdin.isatty():
            raise OrderflowError(f"{question} Refusing without --yes (or keep it with --keep-data)")
        if not click.confirm(question, default=False, err=True):
            raise OrderflowError("Nothing was deleted. Use --keep-data to remove everything but the table")
    results = operations.teardown(ctx, steps, on_progress=out.progress())
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
    colour = {"exists": "green", "missing": "dim", "foreign": "magenta"}
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


def main() -> None:
    cli(prog_name="orderflow")


if __name__ == "__main__":
    main()
