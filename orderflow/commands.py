"""The commands beside the pipeline's own: `local` (the embedded AWS in the background) and `policy` (what a
deployer must be allowed). Parse, call, render, as in cli.py."""

from __future__ import annotations

import contextlib
import json
import re

import click
from rich.markup import escape

from orderflow.commandline import Options, account_concurrency_option, realistic_options
from orderflow.errors import AccessDeniedError, ConfigError
from orderflow.local.server import control
from orderflow.provision import deployer
from orderflow.provision.base import Context
from orderflow.provision.grants import COMMANDS, unknown_commands
from orderflow.render import render_local_server


def _commands(value: str | None) -> list[str]:
    chosen = [c.strip() for c in (value or ",".join(COMMANDS)).split(",") if c.strip()]
    unknown = unknown_commands(chosen)
    if unknown or not chosen:
        raise ConfigError(f"--commands: {', '.join(unknown) or 'none given'} (choose from {', '.join(COMMANDS)})")
    return chosen


def preflight(options: Options, ctx: Context, commands: list[str], principal: str | None = None) -> None:
    """Before anything is written: every permission these commands need that the caller (or `principal`) lacks, one
    line each, and a refusal. CannotCheck when IAM will not say."""
    missing = deployer.missing_permissions(ctx, commands, principal)
    for m in missing:
        options.output.error(f"{principal or ctx.aws.caller_arn} may not call {m.line()}")
    if missing:
        raise AccessDeniedError(deployer.lacking(len(missing)))


def preflight_quietly(options: Options, ctx: Context, command: str) -> None:
    """`up`'s own check: where IAM will not say (an administrator's keys, the embedded AWS's default ones), the
    calls themselves will."""
    with contextlib.suppress(deployer.CannotCheck):
        preflight(options, ctx, [command])


@click.command("policy")
@click.option("--commands", "commands", metavar="LIST", help=f"Comma-separated: {','.join(COMMANDS)} [default: all].")
@click.option("--check", is_flag=True, help="Ask IAM which of these permissions the caller lacks (changes nothing).")
@click.option(
    "--deployer",
    "deployer_arn",
    metavar="ARN",
    help="The deployer's user or role ARN, allowed to check itself [default: whichever IAM user calls].",
)
@click.pass_obj
def policy_command(options: Options, commands: str | None, check: bool, deployer_arn: str | None) -> None:
    """The IAM policy a deployer needs for this stack: give your deployer this, and nothing more."""
    chosen = _commands(commands)
    if deployer_arn is not None and not re.fullmatch(r"arn:[\w-]+:iam::\d{12}:(user|role)/\S+", deployer_arn):
        raise ConfigError(f"--deployer {deployer_arn!r} is not a user's or role's ARN (arn:aws:iam::ACCOUNT:role/NAME)")
    out = options.output
    aws = options.connect()
    ctx = Context(aws=aws, config=options.stack_config(aws))
    if not check:
        document = deployer.policy(ctx, chosen, deployer_arn)
        out.line(escape(json.dumps(document, indent=2)))
        out.document(document)
        return
    try:
        preflight(options, ctx, chosen, deployer_arn)
    except deployer.CannotCheck as e:
        raise AccessDeniedError(f"cannot check: {e}") from None
    out.document({"ok": True, "checked": True, "missing": []})
    out.line(f"{deployer_arn or aws.caller_arn} may run {', '.join(chosen)} on stack {ctx.config.name}")


@click.group(no_args_is_help=False)
def local() -> None:
    """The embedded AWS: moto's server on 127.0.0.1 plus orderflow's docker-less Lambda runtime."""


@local.command("start")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=control.DEFAULT_PORT,
    show_default=True,
    envvar="ORDERFLOW_LOCAL_PORT",
)
@realistic_options
@account_concurrency_option
@click.option("--fresh", is_flag=True, help="Start empty: discard the stacks, orders and logs kept from last time.")
@click.pass_obj
def local_start(
    options: Options, port: int, realistic: bool, time_scale: float, account_concurrency: int, fresh: bool
) -> None:
    """Start the embedded AWS in the background (with the state it had when it last stopped) and wait until it
    answers."""
    out = options.output
    with out.waiting("starting the embedded AWS …"):
        status = control.start(port, time_scale, realistic, fresh, account_concurrency)
    if status.note:
        out.warn(status.note)
    render_local_server(out, status)
    out.document(status.to_document())


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
    options.output.document(status.to_document())
    if not status.running:
        raise SystemExit(1)
