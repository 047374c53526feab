"""What Lambda refuses when an SQS event source mapping is created or changed, and why.

`refusal` is the rule book, pure; `MappingRules` reads the function, queue and role it needs from moto's backends
in-process (the embedded AWS's own state) and is called by the enforcement middleware before moto sees the request.
Messages are AWS's own (docs/fidelity.md lists their sources).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orderflow.arns import parse_arn
from orderflow.local.iam.identities import Identities
from orderflow.stack import MAXIMUM_CONCURRENCY

INVALID = "InvalidParameterValueException"
VALIDATION = "ValidationException"
CONFLICT = "ResourceConflictException"
# The HTTP status Lambda answers each refusal with (400 unless named).
STATUS = {CONFLICT: 409}
# The permissions Lambda checks on the execution role for an SQS source, in the order it names them.
POLLER_ACTIONS = ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes")


@dataclass(frozen=True)
class MappingRequest:
    """What the rules need to know about a mapping about to exist."""

    batch_size: int
    batching_window: int
    queue_visibility_timeout: int | None  # None: the queue was not found (moto answers that itself)
    function_timeout: int | None  # None: the function was not found
    role_assumable: bool
    missing_poller_action: str | None  # the first of POLLER_ACTIONS the role may not call on the queue
    maximum_concurrency: Any = None  # ScalingConfig.MaximumConcurrency as sent; None: not set


def maximum_concurrency_refusal(value: Any) -> tuple[str, str] | None:
    """The API's own validation of ScalingConfig.MaximumConcurrency (the message is the AWS API's constraint text)."""
    low, high = MAXIMUM_CONCURRENCY
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        return VALIDATION, f"1 validation error detected: Value '{value}' at 'scalingConfig.maximumConcurrency' " + (
            "failed to satisfy constraint: Member must be an integer"
        )
    bound = (
        f"greater than or equal to {low}" if value < low else f"less than or equal to {high}" if value > high else ""
    )
    if not bound:
        return None
    return VALIDATION, (
        f"1 validation error detected: Value '{value}' at 'scalingConfig.maximumConcurrency' failed to satisfy "
        f"constraint: Member must have value {bound}"
    )


def refusal(request: MappingRequest) -> tuple[str, str] | None:
    """(error code, message) when Lambda would refuse this mapping, else None."""
    invalid_scaling = maximum_concurrency_refusal(request.maximum_concurrency)
    if invalid_scaling:
        return invalid_scaling
    if request.batch_size > 10 and request.batching_window < 1:
        return (
            INVALID,
            "Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10",
        )
    if request.function_timeout is None or request.queue_visibility_timeout is None:
        return None
    if not request.role_assumable:
        return INVALID, "The role defined for the function cannot be assumed by Lambda."
    if request.missing_poller_action:
        return INVALID, (
            f"The provided execution role does not have permissions to call {request.missing_poller_action} on SQS"
        )
    if request.queue_visibility_timeout < request.function_timeout:
        return INVALID, (
            f"Queue visibility timeout: {request.queue_visibility_timeout} seconds is less than Function timeout: "
            f"{request.function_timeout} seconds"
        )
    return None


def missing_poller_action(roles: Identities, role_arn: str, queue_arn: str) -> str | None:
    return next(
        (a for a in POLLER_ACTIONS if roles.decide(role_arn, f"sqs:{a}", queue_arn) != "allow"),
        None,
    )


def duplicate_refusal(backend: Any, queue_arn: str, function: Any) -> tuple[str, str] | None:
    """Lambda keeps one mapping per source and function: a second CreateEventSourceMapping is a conflict naming
    the first (its message, as AWS words it, is in docs/fidelity.md)."""
    for mapping in backend.list_event_source_mappings(queue_arn, ""):
        if mapping.function_arn == function.function_arn:
            return CONFLICT, (
                f'An event source mapping with SQS arn (" {queue_arn} ") and function (" {function.function_name} ") '
                f"already exists. Please update or delete the existing mapping with UUID {mapping.uuid}"
            )
    return None


class MappingRules:
    """Reads the embedded AWS's state for `refusal`. Only SQS sources are judged; anything else passes to moto."""

    def __init__(self, roles: Identities, default_account: Callable[[], str]) -> None:
        self.roles = roles
        self.default_account = default_account

    def __call__(self, region: str, uuid: str, params: dict[str, Any]) -> tuple[str, str] | None:
        from moto.awslambda.models import lambda_backends

        account = self.default_account()
        backend = lambda_backends[account][region]
        current = backend.get_event_source_mapping(uuid) if uuid else None
        if uuid and current is None:
            return None  # moto answers ResourceNotFoundException
        queue_arn = params.get("EventSourceArn") or (current.event_source_arn if current else "")
        if not str(queue_arn).startswith("arn:") or parse_arn(queue_arn).service != "sqs":
            return None
        batch_size = int(params.get("BatchSize", current.batch_size if current else 10) or 10)
        window = int(params.get("MaximumBatchingWindowInSeconds", current.max_batch_window if current else 0) or 0)
        maximum = (params.get("ScalingConfig") or {}).get("MaximumConcurrency")
        if uuid and "FunctionName" not in params:
            # Changing batch settings only: Lambda checks the parameters, not the role or the queue again.
            return refusal(MappingRequest(batch_size, window, None, None, True, None, maximum))
        function = self._function(backend, params.get("FunctionName") or (current.function_arn if current else None))
        if not uuid and function is not None:
            existing = duplicate_refusal(backend, queue_arn, function)
            if existing:
                return existing
        return refusal(
            MappingRequest(
                batch_size=batch_size,
                batching_window=window,
                queue_visibility_timeout=self._visibility_timeout(queue_arn),
                function_timeout=int(function.timeout) if function else None,
                role_assumable=function is None or self.roles.lambda_may_assume(function.role),
                missing_poller_action=missing_poller_action(self.roles, function.role, queue_arn) if function else None,
                maximum_concurrency=maximum,
            )
        )

    def problem_of(self, mapping: Any) -> str | None:
        """What keeps an existing mapping from polling, in Lambda's words, or None (realistic: the end of Creating)."""
        from moto.awslambda.models import lambda_backends

        arn = parse_arn(mapping.function_arn)
        function = self._function(lambda_backends[arn.account][arn.region], mapping.function_arn)
        if function is None:
            return "The function was deleted."
        if not self.roles.lambda_may_assume(function.role):
            return "Lambda was unable to assume the function's execution role."
        action = missing_poller_action(self.roles, function.role, mapping.event_source_arn)
        if action is not None:
            return f"The function execution role does not have permissions to call {action} on SQS."
        return None

    @staticmethod
    def _function(backend: Any, name: str | None) -> Any:
        from moto.awslambda.exceptions import UnknownFunctionException

        if not name:
            return None
        try:
            return backend.get_function(name)
        except UnknownFunctionException:
            return None

    @staticmethod
    def _visibility_timeout(queue_arn: str) -> int | None:
        from moto.sqs.exceptions import QueueDoesNotExist
        from moto.sqs.models import sqs_backends

        arn = parse_arn(queue_arn)
        try:
            return int(sqs_backends[arn.account][arn.region].get_queue(arn.resource).visibility_timeout)
        except QueueDoesNotExist:
            return None
