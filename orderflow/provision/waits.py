"""Waiting on AWS's eventually consistent control plane: retry a call AWS refuses for a known, passing reason, and
poll a resource until it reaches a state. Bounded, on the context's injectable clock, and reported (ctx.on_wait) so
that a user sees what is being waited for and why."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from botocore import xform_name
from botocore.exceptions import ClientError

from orderflow.aws import error_code
from orderflow.errors import OrderflowError
from orderflow.provision.base import Context

T = TypeVar("T")

# IAM is eventually consistent: a new role or policy can be refused by Lambda for seconds; Terraform retries its
# Lambda calls for 2 minutes.
IAM_PROPAGATION_LIMIT_SECONDS = 120.0
# Lambda's and DynamoDB's own state changes: usually seconds, rarely minutes.
STATE_LIMIT_SECONDS = 600.0


def retry_while(
    ctx: Context,
    key: str,
    call: Callable[[], T],
    passing: Callable[[ClientError], str | None],
    limit: float = IAM_PROPAGATION_LIMIT_SECONDS,
) -> T:
    """Run `call`; while AWS refuses it for a reason that passes with time (`passing` names it, else None), report
    the reason and try again every poll interval, for at most `limit` seconds."""
    started = ctx.clock()
    while True:
        try:
            return call()
        except ClientError as e:
            reason = passing(e)
            waited = ctx.clock() - started
            if reason is None or waited + ctx.poll_interval > limit:
                raise
            ctx.on_wait(key, f"{reason} (retrying, {waited:.0f}s of at most {limit:.0f}s)")
        ctx.sleep(ctx.poll_interval)


def refused_with(code: str, *fragments: str) -> Callable[[ClientError], str | None]:
    """A `passing` test: the error has this code and (if given) one of these message fragments."""

    def test(error: ClientError) -> str | None:
        message = error.response.get("Error", {}).get("Message", "")
        if error_code(error) != code or (fragments and not any(f in message for f in fragments)):
            return None
        return f"{code}: {message}"

    return test


def any_of(*tests: Callable[[ClientError], str | None]) -> Callable[[ClientError], str | None]:
    return lambda error: next((reason for test in tests if (reason := test(error)) is not None), None)


def poll_until(
    ctx: Context,
    key: str,
    what: str,
    read: Callable[[], Any],
    done: Callable[[Any], bool],
    describe: Callable[[Any], str] = str,
    limit: float = STATE_LIMIT_SECONDS,
) -> Any:
    """Read until `done(value)`; report `what` and the value meanwhile; give up after `limit` seconds naming the last
    value seen."""
    started = ctx.clock()
    while True:
        value = read()
        if done(value):
            return value
        waited = ctx.clock() - started
        if waited + ctx.poll_interval > limit:
            raise OrderflowError(f"Gave up after {limit:.0f}s waiting for {what}: it is still {describe(value)}")
        ctx.on_wait(key, f"waiting for {what} (now {describe(value)}, {waited:.0f}s)")
        ctx.sleep(ctx.poll_interval)


def wait_with(
    ctx: Context,
    key: str,
    what: str,
    client: Any,
    waiter: str,
    explain: Callable[[], str] | None = None,
    limit: float = STATE_LIMIT_SECONDS,
    **params: Any,
) -> None:
    """Wait for the service's own signal (TableStatus, State, LastUpdateStatus) as botocore's waiter defines it —
    its operation and acceptors — but polled on the context's clock: reported while it waits, interruptible between
    polls, bounded by `limit`. A failure state names the reason AWS gives (`explain`), not just "gave up"."""
    config = client.get_waiter(waiter).config
    operation = getattr(client, xform_name(config.operation))
    started = ctx.clock()
    while True:
        try:
            response = operation(**params)
        except ClientError as e:
            response = e.response  # some acceptors match an error code (ResourceNotFoundException: "gone")
        state = next((a.state for a in config.acceptors if a.matcher_func(response)), None)
        if state == "success":
            return
        if state == "failure" or (state is None and "Error" in response):
            reason = explain() if explain is not None else str(response.get("Error", response))
            raise OrderflowError(f"{what} did not happen: {reason}")
        waited = ctx.clock() - started
        if waited + ctx.poll_interval > limit:
            raise OrderflowError(f"Gave up after {limit:.0f}s waiting for {what}")
        ctx.on_wait(key, f"waiting for {what} ({waited:.0f}s)")
        ctx.sleep(ctx.poll_interval)
