"""click's plumbing for the orderflow command line: the global options and how they connect, parameter types,
the settings flags generated from StackSettings, and the group that turns every failure into one line on stderr (or
one JSON document with a stable `code`) and a non-zero exit, never a traceback."""

from __future__ import annotations

import math
import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import botocore.exceptions
import click
from click.core import ParameterSource

from orderflow import settings_file
from orderflow.aws import LOCAL_CONFIG, Aws, aws_errors, connect, or_none
from orderflow.errors import AwsError, Cancelled, FileProblem, NotFoundError, OrderflowError
from orderflow.iac import resolve
from orderflow.local.server import state
from orderflow.provision.base import Context
from orderflow.stack import StackConfig, StackSettings, user_settings
from orderflow.ui import Output, export_format_problem, exported


@dataclass
class Options:
    stack: str
    region: str | None
    profile: str | None
    endpoint_url: str | None
    local: bool
    output: Output
    config: Path | None = None
    from_cloudformation: str | None = None
    config_label: str = "--config"  # where `config` was given: the flag or ORDERFLOW_CONFIG

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

    def runtime_note(self, runtime: str, embedded: bool = False) -> str | None:
        """On the embedded AWS (this machine's): which Python stands in for a runtime this machine lacks, else None."""
        if not (self.local or embedded):
            return None
        from orderflow.local.runtime.environment.interpreters import find

        found = find(runtime)
        return found.stand_in_warning() if found.stands_in else None

    def stack_config(self, aws: Aws | None, settings: StackSettings | None = None) -> StackConfig:
        """The stack the command acts on: orderflow's names, or those resolved from where it is managed."""
        names, managed_by = self.managed_names(aws)
        return StackConfig(self.stack, settings or StackSettings(), names, managed_by)

    def context(self, settings: StackSettings | None = None) -> Context:
        aws = self.connect()
        ctx = Context(aws=aws, config=self.stack_config(aws, settings))
        if self.local:
            # The embedded AWS runs AWS's delays at its time scale (none at all unless started --realistic).
            server = state.recorded_server()
            ctx.time_scale = server.delay_scale if server else 0.0
        return ctx

    def managed_names(self, aws: Aws | None) -> tuple[tuple[tuple[str, str], ...], str | None]:
        """A stack orderflow did not build: its resources' names and who manages it (else none, None). `aws` is
        needed for --from-cloudformation only."""
        if self.from_cloudformation and aws is not None:
            names = resolve.from_cloudformation(aws, self.from_cloudformation)
            return tuple(sorted(names.items())), f"CloudFormation stack {self.from_cloudformation!r}"
        file = settings_file.load(self.stack, self.config, label=self.config_label)
        if file is not None and file.resources:
            return tuple(sorted(file.resources.items())), f"{file.shown} [stacks.{self.stack}.resources]"
        return (), None


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
    "export",
    "down",
    "policy",
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
                Output(True).document({"ok": False, "code": "usage", "error": blamed(e, arguments), "usage": usage})
            else:
                # one line, like every other error (click's own form takes four)
                where = e.ctx.command_path if e.ctx else "orderflow"
                message = blamed(e, arguments).strip().splitlines() or ["invalid usage"]
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
            message = _with_local_hint(options, e)
            output.document({"ok": False, "code": e.code, "error": message})
            output.error(message)
            sys.exit(e.exit_code)
        except (KeyboardInterrupt, Cancelled):
            _interrupted(sys.argv[1:])
        return result


def _with_local_hint(options: Options | None, error: OrderflowError) -> str:
    """On the embedded AWS, what a command did not find may be gone because it started empty: say so (when the
    stack is indeed not there: a missing bucket of one's own is not the embedded AWS's fault)."""
    if options is None or not options.local or not isinstance(error, NotFoundError | AwsError):
        return str(error)
    server = state.recorded_server()
    hint = server.empty_hint() if server is not None else None
    if hint is None or _stack_is_there(options):
        return str(error)
    return f"{hint[0].upper()}{hint[1:]} ({error})"


def _stack_is_there(options: Options) -> bool:
    try:
        aws = options.connect()
        table = options.stack_config(aws).table_name
        return or_none(lambda: aws.client("dynamodb").describe_table(TableName=table)) is not None
    except (OrderflowError, botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
        return False


def blamed(error: click.UsageError, arguments: list[str]) -> str:
    """click's message, blaming what the user actually set: a value from an ORDERFLOW_* variable is the variable's
    fault, not the flag's nobody typed."""
    message = error.format_message()
    param = getattr(error, "param", None)
    if not isinstance(error, click.BadParameter) or param is None or not param.envvar:
        return message
    envvar = param.envvar if isinstance(param.envvar, str) else param.envvar[0]
    typed = any(a == o or a.startswith(f"{o}=") for a in arguments for o in param.opts)
    if envvar not in os.environ or typed:
        return message
    return message.replace(f"for {param.get_error_hint(error.ctx)}", f"for {envvar} (environment variable)", 1)


def _interrupted(arguments: list[str]) -> None:
    if _wants_json(arguments):
        Output(True).document({"ok": False, "code": Cancelled.code, "error": "interrupted"})
    click.echo("interrupted", err=True)
    sys.exit(130)


class Matching(click.ParamType):
    """A string that must match a pattern (an email address, for one)."""

    name = "text"

    def __init__(self, pattern: str, rule: str) -> None:
        self.pattern, self.rule = pattern, rule

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if not re.fullmatch(self.pattern, str(value)):
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


def resolve_settings(click_ctx: click.Context, options: Options, flags: dict[str, Any]) -> settings_file.Resolved:
    given = {}
    for setting in user_settings():
        source = click_ctx.get_parameter_source(setting.name)
        if flags[setting.name] is not None:
            label = setting.metadata["flag"] if source == ParameterSource.COMMANDLINE else _envvar(setting)
            given[setting.name] = (flags[setting.name], label)
    return settings_file.resolve(given, settings_file.load(options.stack, options.config, label=options.config_label))


def export_option(command: Any) -> Any:
    return click.option(
        "--export",
        "export_to",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Also save the report as SVG or HTML (by the file's suffix), for a bug report or a pull request.",
    )(command)


def check_export(path: Path | None) -> None:
    """Before any work: a file name that cannot be exported to is a usage error, and so is one that exists (a report
    saved earlier is never overwritten silently)."""
    problem = export_format_problem(path) if path is not None else None
    if problem:
        raise click.UsageError(problem)
    if path is not None and path.exists():
        raise click.UsageError(f"--export {path}: the file exists; choose another name or remove it first")


def export(path: Path | None, render: Any) -> None:
    if path is None:
        return
    try:
        exported(render, path)
    except OSError as e:
        raise FileProblem(f"Cannot write {path}: {e.strerror or e}") from e


def account_concurrency_option(command: Any) -> Any:
    return click.option(
        "--account-concurrency",
        type=click.IntRange(1, 100_000),
        default=1000,
        show_default=True,
        envvar="ORDERFLOW_ACCOUNT_CONCURRENCY",
        help="The account's Lambda concurrency limit per region (AWS's default; a new account may start far lower).",
    )(command)


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
            "(metrics, alarm evaluation) and the SQS poller's scaling minute always, the control plane's delays "
            "with --realistic."
        ),
    )(command)
    return click.option(
        "--realistic",
        is_flag=True,
        envvar="ORDERFLOW_REALISTIC",
        help="Behave like AWS's control plane: slow, eventually consistent (docs/fidelity.md lists each delay).",
    )(command)
