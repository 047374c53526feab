"""Typed operations: the plan as data.

A resource's plan is a list of these. An operation is an API call (service, operation, parameters) or a wait (a
botocore waiter, a named condition the resource polls, or a documented propagation delay), each with a one-line
description derived from it. The executor runs exactly these objects and `--dry-run` prints them, so what is shown
is what runs; the deployer's IAM policy and the exported template can be derived from the same data, and tests
assert operation lists without AWS (as AWS Chalice's planner emits `APICall(method_name, params)`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Union

from botocore.exceptions import ClientError

from orderflow.aws import error_code

# IAM is eventually consistent: a new role or policy can be refused by Lambda for seconds; Terraform retries its
# Lambda calls for 2 minutes.
IAM_PROPAGATION_LIMIT_SECONDS = 120.0
# Lambda's and DynamoDB's own state changes: usually seconds, rarely minutes.
STATE_LIMIT_SECONDS = 600.0


@dataclass(frozen=True)
class Transient:
    """A refusal that passes with time: the error code and (if given) one of these message fragments. `reason`
    replaces AWS's message in what the user is told while orderflow waits."""

    code: str
    fragments: tuple[str, ...] = ()
    reason: str | None = None

    def matches(self, error: ClientError) -> str | None:
        """Why the call may be retried, or None when this refusal is not the passing one."""
        message = error.response.get("Error", {}).get("Message", "")
        if error_code(error) != self.code or (self.fragments and not any(f in message for f in self.fragments)):
            return None
        return self.reason or f"{self.code}: {message}"


@dataclass(frozen=True)
class Ref:
    """A value known only when the plan runs: what an earlier call of the same step stored under `name`."""

    name: str

    def __str__(self) -> str:
        return f"${{{self.name}}}"


@dataclass(frozen=True)
class Call:
    """One API call. `gone_ok`: the resource being already gone counts as done (deletes). `store`: keep
    `response[field]` under a name later operations of the step refer to with `Ref(name)`. `exists`: the codes of
    "already exists", after which the resource is read back and accepted if it is ours (race-safe creates)."""

    service: str
    operation: str
    params: Mapping[str, Any]
    target: str
    reasons: tuple[str, ...] = ()
    retry: tuple[Transient, ...] = ()
    retry_limit: float = IAM_PROPAGATION_LIMIT_SECONDS
    gone_ok: bool = False
    also_ok: tuple[str, ...] = ()  # other error codes that mean the call's work is done or being done
    store: tuple[str, str] | None = None
    # Error codes that mean "one of this name exists": made meanwhile by a concurrent creator (another machine's
    # `up`). The resource is read back and accepted when it is ours, refused as foreign when not.
    exists: tuple[str, ...] = ()

    @property
    def action(self) -> str:
        """The IAM action this call needs (the services orderflow calls name their boto3 client by their IAM
        prefix: dynamodb, sns, sqs, iam, lambda, logs, cloudwatch)."""
        return f"{self.service}:{self.operation}"

    def describe(self) -> str:
        return f"{self.action} {self.target}{_shown(self.params)}"

    def to_document(self) -> dict[str, Any]:
        return {"call": self.action, "target": self.target, "parameters": _printable(self.params)}


@dataclass(frozen=True)
class Wait:
    """Poll until the resource is in a state: botocore's `waiter` of the service (its operation and acceptors), or
    a `condition` the resource names and checks itself (`Resource.check`)."""

    service: str
    target: str
    what: str
    waiter: str | None = None
    condition: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    reasons: tuple[str, ...] = ()
    limit: float = STATE_LIMIT_SECONDS
    # For a waiter: where its answer holds the state (a JMESPath), and the states met on the way. A state that is
    # neither the waiter's own nor one of these will not pass by waiting: the wait fails at once, naming it.
    state_path: str = ""
    passing: tuple[str, ...] = ()

    def describe(self) -> str:
        how = self.waiter or self.condition
        return f"wait for {self.target} {self.what} ({how})"

    def to_document(self) -> dict[str, Any]:
        return {"wait": self.waiter or self.condition, "target": self.target, "for": self.what}


@dataclass(frozen=True)
class Pause:
    """AWS documents a propagation delay and gives no signal when it is over: wait it out, scaled to the target
    (`Context.time_scale`: 1 on AWS, 0 on an instant embedded AWS)."""

    seconds: float
    target: str
    why: str
    reasons: tuple[str, ...] = ()

    def describe(self) -> str:
        return f"wait {self.seconds:.0f}s (scaled to the target) for {self.target}: {self.why}"

    def to_document(self) -> dict[str, Any]:
        return {"pause": self.seconds, "target": self.target, "why": self.why}


@dataclass(frozen=True)
class Retag:
    """After a create: read the resource's tags back and, where the endpoint dropped them (some do; AWS ignores
    `Tags` on PutMetricAlarm for an alarm that exists), apply them with `call`, the service's TagResource. So a
    resource made in this run is never taken for someone else's."""

    call: Call
    reasons: tuple[str, ...] = ()

    @property
    def service(self) -> str:
        return self.call.service

    @property
    def target(self) -> str:
        return self.call.target

    def describe(self) -> str:
        return f"read back the tags of {self.target}; {self.call.action} if they were dropped"

    def to_document(self) -> dict[str, Any]:
        return {"retag": self.call.action, "target": self.target, "parameters": _printable(self.call.params)}


Operation = Union[Call, Wait, Pause, Retag]  # noqa: UP007 - a runtime alias; `X | Y` of classes needs 3.10's types


def reasons_of(operations: list[Operation] | tuple[Operation, ...]) -> tuple[str, ...]:
    """Why the operations are planned, each reason once, in order (the diff a user reads)."""
    seen: dict[str, None] = {}
    for op in operations:
        for reason in op.reasons:
            seen.setdefault(reason, None)
    return tuple(seen)


def resolve(params: Mapping[str, Any], values: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters with every `Ref` replaced by the value stored under its name."""
    return {k: values[v.name] if isinstance(v, Ref) else v for k, v in params.items()}


def _printable(value: Any) -> Any:
    """Parameters as a JSON document shows them: bytes by size and digest, references by name."""
    if isinstance(value, bytes):
        return f"<{len(value)} bytes, sha256 {hashlib.sha256(value).hexdigest()[:12]}>"
    if isinstance(value, Ref):
        return str(value)
    if isinstance(value, Mapping):
        return {k: _printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_printable(v) for v in value]
    return value


def _shown(params: Mapping[str, Any]) -> str:
    """The parameter names a reader checks, short: what is set, not the whole document."""
    names = [
        f"{k}[{', '.join(v)}]" if k in _BY_MEMBER and isinstance(v, Mapping) else k
        for k, v in params.items()
        if k not in _IDENTIFYING
    ]
    return f" ({', '.join(names)})" if names else ""


# Parameters that carry several settings: shown by their members (which queue attributes a call sets).
_BY_MEMBER = {"Attributes"}


# Parameters that name the target (already in the description) rather than set something on it.
_IDENTIFYING = {
    "TableName",
    "QueueUrl",
    "QueueName",
    "TopicArn",
    "RoleName",
    "FunctionName",
    "UUID",
    "logGroupName",
    "AlarmName",
    "AlarmNames",
    "Name",
    "SubscriptionArn",
    "ResourceArn",
    "PolicyName",
}
