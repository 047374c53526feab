"""Warnings about settings that work until traffic arrives: Lambda's concurrency trap on an SQS trigger.

Sources (docs/fidelity.md, "Concurrency"): the Lambda Developer Guide's "Configuring scaling behavior for SQS event
source mappings" (the mapping does not account for reserved concurrency; cap it with maximum concurrency instead),
AWS's knowledge-center article on SQS-triggered functions being throttled (set the source queue's maxReceiveCount to
at least 5), and "Using Lambda with Amazon SQS" (a visibility timeout of at least six times the function timeout).
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from orderflow.aws import is_access_denied
from orderflow.provision.base import Context
from orderflow.provision.resources.function import Function
from orderflow.provision.resources.queues import OrderQueue, parse_redrive
from orderflow.provision.resources.trigger import Trigger
from orderflow.stack import VISIBILITY_TO_TIMEOUT_FACTOR

# The batches a mapping without a maximum starts with, and the most it scales to.
FIRST_BATCHES = 5
MOST_BATCHES = 1000
# AWS's advice for a queue whose function may be throttled.
SAFE_MAX_RECEIVE_COUNT = 5


def concurrency_warnings(
    reserved: int | None,
    maximum: int | None,
    max_receive_count: int | None,
    visibility_timeout: int | None,
    function_timeout: int | None,
) -> list[str]:
    """What in these settings loses healthy orders to the DLQ or runs a batch twice (pure)."""
    warnings = []
    ceiling = maximum or FIRST_BATCHES
    if reserved == 0:
        warnings.append(
            "the function's reserved concurrency is 0: every invocation is throttled, and every order ends in the DLQ"
        )
    elif reserved is not None and reserved < ceiling:
        what = f"the trigger's maximum concurrency ({maximum})" if maximum else "the 5 batches the trigger starts with"
        warnings.append(
            f"the function's reserved concurrency ({reserved}) is below {what}: batches it cannot run are throttled, "
            f"and their healthy orders count towards the DLQ. Cap the trigger instead: `orderflow up "
            f"--max-concurrency {max(2, reserved)}` (the trigger does not account for reserved concurrency)"
        )
    throttling_possible = reserved is not None and reserved < (maximum or MOST_BATCHES)
    if throttling_possible and max_receive_count is not None and max_receive_count < SAFE_MAX_RECEIVE_COUNT:
        warnings.append(
            f"maxReceiveCount is {max_receive_count} while the function can be throttled: a throttled batch uses up "
            f"a receive, so AWS advises at least {SAFE_MAX_RECEIVE_COUNT} (`orderflow up --max-receive-count "
            f"{SAFE_MAX_RECEIVE_COUNT}`)"
        )
    if visibility_timeout is not None and function_timeout is not None:
        minimum = VISIBILITY_TO_TIMEOUT_FACTOR * function_timeout
        if visibility_timeout < minimum:
            warnings.append(
                f"the queue's visibility timeout ({visibility_timeout}s) is under {VISIBILITY_TO_TIMEOUT_FACTOR} x "
                f"the function timeout ({function_timeout}s = {minimum}s): a slow batch can be handed out again "
                "while it is still running"
            )
    return warnings


def stack_warnings(ctx: Context) -> list[str]:
    """The concurrency warnings for this stack, read from the account (missing resources: nothing to warn about;
    a caller who may not read them: no advice rather than a failed command)."""
    try:
        function, trigger, queue = Function().read(ctx), Trigger().read(ctx), OrderQueue().read(ctx)
    except ClientError as e:
        if is_access_denied(e):
            return []
        raise
    attributes = queue.state["attributes"] if queue else {}
    redrive = parse_redrive(attributes.get("RedrivePolicy"))
    reserved = function.state.get("ReservedConcurrentExecutions") if function else None
    return concurrency_warnings(
        reserved=None if reserved is None else int(reserved),
        maximum=(trigger.state.get("ScalingConfig") or {}).get("MaximumConcurrency") if trigger else None,
        max_receive_count=int(redrive["maxReceiveCount"]) if redrive else None,
        visibility_timeout=int(attributes["VisibilityTimeout"]) if "VisibilityTimeout" in attributes else None,
        function_timeout=function.state.get("Timeout") if function else None,
    )
