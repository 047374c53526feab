"""Running one step's operations on AWS's eventually consistent control plane: a call AWS refuses for a known,
passing reason is retried, a wait polls until the resource reaches its state, a pause waits out a documented
propagation delay. Bounded, on the context's injectable clock, interruptible (the run's cancel token) and reported,
so that a user sees what is being waited for and why."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jmespath
from botocore import xform_name
from botocore.exceptions import ClientError

from orderflow.aws import error_code, is_not_found
from orderflow.errors import AwsError, Cancelled, ForeignResourceError, TimedOut
from orderflow.provision.base import Context, Resource
from orderflow.provision.ops import Call, Operation, Pause, Retag, Wait, resolve
from orderflow.stack import STACK_TAG


@dataclass
class StepRun:
    """One resource's operations being run: the context, where to report waits, and the run's cancel token."""

    ctx: Context
    resource: Resource
    report: Callable[[str], None] = lambda text: None
    cancelled: threading.Event = field(default_factory=threading.Event)
    # What calls stored (`Call.store`) for later operations of the step (`Ref`).
    values: dict[str, Any] = field(default_factory=dict)

    def sleep(self, seconds: float) -> None:
        """Sleep, or stop at once (Cancelled) when the run is cancelled."""
        if self.ctx.sleep is time.sleep:
            if self.cancelled.wait(seconds):
                raise Cancelled()
            return
        if self.cancelled.is_set():
            raise Cancelled()
        self.ctx.sleep(seconds)  # an injected sleep (a test's fake clock) advances its own clock

    def run(self, operation: Operation) -> None:
        if isinstance(operation, Call):
            call(self, operation)
        elif isinstance(operation, Wait):
            wait(self, operation)
        elif isinstance(operation, Retag):
            retag(self, operation)
        else:
            pause(self, operation)


def call(step: StepRun, op: Call) -> Any:
    """Make the call; while AWS refuses it for a reason that passes with time, report the reason and try again every
    poll interval, for at most `op.retry_limit` seconds. "Already gone" counts as done where `op.gone_ok`."""
    ctx = step.ctx
    method = getattr(ctx.client(op.service), xform_name(op.operation))
    started = ctx.clock()
    while True:
        try:
            response = method(**resolve(op.params, step.values))
            break
        except ClientError as e:
            if (op.gone_ok and is_not_found(e)) or error_code(e) in op.also_ok:
                return None
            if error_code(e) in op.exists and (made := made_meanwhile(step, op)) is not None:
                return made
            reason = next((r for t in op.retry if (r := t.matches(e)) is not None), None)
            waited = ctx.clock() - started
            if reason is None or waited + ctx.poll_interval > op.retry_limit:
                raise
            step.report(f"{reason} (retrying, {waited:.0f}s of at most {op.retry_limit:.0f}s)")
        step.sleep(ctx.poll_interval)
    if op.store is not None:
        name, key = op.store
        step.values[name] = response[key]
    return response


def retag(step: StepRun, op: Retag) -> None:
    """Apply our tags again where the endpoint lost them at creation."""
    observed = step.resource.read(step.ctx)
    if observed is not None and observed.tags is not None and not step.ctx.config.owns(observed.tags):
        step.report(f"{op.target} lost its tags at creation: tagging it again")
        call(step, op.call)


def made_meanwhile(step: StepRun, op: Call) -> dict[str, Any] | None:
    """A create refused because one of the name exists: a concurrent creator made it since the plan was read. Ours
    (by tag, or by the resource it hangs off): accepted as made, what the call would have stored taken from it.
    Someone else's: refused, as the planner would have. Still vanishing or already gone again: None (retry)."""
    ctx, resource = step.ctx, step.resource
    observed = resource.read(ctx)
    if observed is None or resource.vanishing(observed):
        return None
    if resource.owned_with is None and not ctx.config.owns(observed.tags):
        owner = (observed.tags or {}).get(STACK_TAG)
        raise ForeignResourceError(resource.kind, resource.name(ctx), ctx.config.name, owner)
    step.report(f"{resource.kind} {resource.name(ctx)} was made meanwhile by another run of this stack: accepted")
    if op.store is not None:
        name, key = op.store
        step.values[name] = observed.state[key]  # a resource's read state names it as the call's answer does
    return observed.state


def wait(step: StepRun, op: Wait) -> None:
    """Poll until the state is reached: a botocore waiter's operation and acceptors, or the resource's named
    condition. A failure state names the reason AWS gives; the limit names the last state seen."""
    ctx = step.ctx
    params = resolve(op.params, step.values)
    poll = _waiter_poll(step, op, params) if op.waiter else (lambda: step.resource.check(ctx, op, params))
    started = ctx.clock()
    while True:
        reached, seen = poll()
        if reached:
            return
        waited = ctx.clock() - started
        if waited + ctx.poll_interval > op.limit:
            raise TimedOut(f"Gave up after {op.limit:.0f}s waiting for {op.target} {op.what}: it is still {seen}")
        step.report(f"waiting for {op.target} {op.what} (now {seen}, {waited:.0f}s)")
        step.sleep(ctx.poll_interval)


def _waiter_poll(step: StepRun, op: Wait, params: dict[str, Any]) -> Callable[[], tuple[bool, str]]:
    """botocore's waiter definition (operation and acceptors), polled on the step's clock instead of its own."""
    client = step.ctx.client(op.service)
    config = client.get_waiter(op.waiter).config
    operation = getattr(client, xform_name(config.operation))

    def poll() -> tuple[bool, str]:
        try:
            response = operation(**params)
        except ClientError as e:
            response = e.response  # some acceptors match an error code (ResourceNotFoundException: "gone")
        state = next((a.state for a in config.acceptors if a.matcher_func(response)), None)
        seen = jmespath.search(op.state_path, response) if op.state_path and "Error" not in response else None
        unexpected = state is None and seen is not None and seen not in op.passing
        if state == "failure" or (state is None and "Error" in response) or unexpected:
            reason = step.resource.explain(step.ctx, op) or str(response.get("Error", response))
            raise AwsError(f"{op.target} {op.what} did not happen: {reason}")
        return state == "success", str(seen or "not there yet")

    return poll


def pause(step: StepRun, op: Pause) -> None:
    """Wait out a documented delay nothing signals, scaled to the target (0 on an instant embedded AWS)."""
    ctx = step.ctx
    deadline = ctx.clock() + op.seconds * ctx.time_scale
    while (left := deadline - ctx.clock()) > 0:
        step.report(f"{op.why}: {left:.0f}s left")
        step.sleep(min(left, max(ctx.poll_interval, 1.0)))
