"""IAM policy evaluation, pure: do these policies let this principal perform this action on this resource?

Used by the embedded AWS to enforce execution roles and queue policies, and by `verify` to name a missing
permission before any traffic. It follows AWS's evaluation logic within one account
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html): an explicit Deny in
any applicable statement wins; otherwise an Allow in any applicable statement allows; otherwise the request is
implicitly denied.

Why not moto's evaluator (moto/iam/access_control.py, 5.2): it ignores every condition operator but StringEquals (so
`ArnEquals aws:SourceArn` — the queue policy's whole point — always holds), lets a `NotResource` statement allow
everything, matches actions case-sensitively, does not escape regex characters in patterns, and raises on a
`{"Service": …}` principal. Each of those would make the embedded AWS accept what AWS refuses.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from orderflow.arns import parse_arn

Decision = Literal["allow", "explicit-deny", "implicit-deny"]


@dataclass(frozen=True)
class Principal:
    """Who asks: an AWS service (`Service`, e.g. sns.amazonaws.com) or an IAM identity (`AWS`, an ARN)."""

    kind: Literal["AWS", "Service"]
    id: str
    account: str | None = None


@lru_cache(maxsize=4096)
def _glob(pattern: str, case_sensitive: bool) -> re.Pattern[str]:
    """IAM's wildcards: `*` any run of characters, `?` one character; everything else literal."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", 0 if case_sensitive else re.IGNORECASE | re.DOTALL)


def _values(element: Any) -> list[str]:
    if element is None:
        return []
    return [str(v) for v in element] if isinstance(element, list) else [str(element)]


def matches(patterns: Any, value: str, case_sensitive: bool = True) -> bool:
    return any(_glob(p, case_sensitive).match(value) for p in _values(patterns))


def _principal_matches(element: Any, principal: Principal | None) -> bool:
    if element == "*":
        return True
    if principal is None or not isinstance(element, dict):
        return False
    wanted = _values(element.get(principal.kind))
    if "*" in wanted:
        return True
    if principal.kind == "Service":
        return principal.id in wanted
    # An account id or its root ARN names every identity of that account.
    account_forms = {principal.account, f"arn:aws:iam::{principal.account}:root"} if principal.account else set()
    return principal.id in wanted or bool(account_forms & set(wanted))


_STRING_TESTS = {
    "StringEquals": lambda want, got: got == want,
    "StringEqualsIgnoreCase": lambda want, got: got.lower() == want.lower(),
    "StringLike": lambda want, got: bool(_glob(want, True).match(got)),
    "ArnEquals": lambda want, got: got == want,
    "ArnLike": lambda want, got: bool(_glob(want, True).match(got)),
    "Bool": lambda want, got: got.lower() == want.lower(),
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def _condition_holds(operator: str, key: str, wanted: Any, context: Mapping[str, str]) -> bool | None:
    """One operator on one key. None: an operator this evaluator does not know (the caller decides safely)."""
    operator = operator.split(":", 1)[-1]  # ForAnyValue:/ForAllValues: — every context key here is single-valued
    if_exists = operator.endswith("IfExists")
    operator = operator.removesuffix("IfExists")
    actual = next((v for k, v in context.items() if k.lower() == key.lower()), None)
    if operator == "Null":
        return (actual is None) == (str(_values(wanted)[0]).lower() == "true")
    if actual is None:
        # A missing key: ...IfExists and negated operators hold, positive ones fail (IAM reference, Condition).
        if if_exists or operator in _NEGATED:
            return True
        return False if operator in _STRING_TESTS else None
    if operator in _NEGATED:
        test = _STRING_TESTS[_NEGATED[operator]]
        return not any(test(w, actual) for w in _values(wanted))
    test = _STRING_TESTS.get(operator)
    if test is None:
        return None
    return any(test(w, actual) for w in _values(wanted))


def _conditions_hold(conditions: Any, context: Mapping[str, str]) -> bool | None:
    """Every operator and every key must hold (values within one key are alternatives)."""
    if not conditions:
        return True
    unknown = False
    for operator, keys in conditions.items():
        for key, wanted in (keys or {}).items():
            held = _condition_holds(operator, key, wanted, context)
            if held is False:
                return False
            unknown = unknown or held is None
    return None if unknown else True


def statement_effect(
    statement: Mapping[str, Any],
    action: str,
    resource: str,
    principal: Principal | None = None,
    context: Mapping[str, str] | None = None,
) -> Literal["Allow", "Deny"] | None:
    """The statement's effect if it applies to this request, else None."""
    if "NotAction" in statement:
        if matches(statement["NotAction"], action, case_sensitive=False):
            return None
    elif not matches(statement.get("Action"), action, case_sensitive=False):
        return None
    if "NotResource" in statement:
        if matches(statement["NotResource"], resource):
            return None
    elif "Resource" in statement and not matches(statement["Resource"], resource):
        return None
    if "Principal" in statement and not _principal_matches(statement["Principal"], principal):
        return None
    if "NotPrincipal" in statement and _principal_matches(statement["NotPrincipal"], principal):
        return None
    effect = "Deny" if statement.get("Effect") == "Deny" else "Allow"
    held = _conditions_hold(statement.get("Condition"), context or {})
    if held is None:
        # An operator we cannot evaluate: never let it grant, always let it refuse.
        return "Deny" if effect == "Deny" else None
    return effect if held else None


def statements(policy: Mapping[str, Any] | None) -> list[Mapping[str, Any]]:
    found = (policy or {}).get("Statement", [])
    return [s for s in (found if isinstance(found, list) else [found]) if isinstance(s, Mapping)]


def evaluate(
    policies: Iterable[Mapping[str, Any] | None],
    action: str,
    resource: str,
    principal: Principal | None = None,
    context: Mapping[str, str] | None = None,
) -> Decision:
    allowed = False
    for policy in policies:
        for statement in statements(policy):
            effect = statement_effect(statement, action, resource, principal, context)
            if effect == "Deny":
                return "explicit-deny"
            allowed = allowed or effect == "Allow"
    return "allow" if allowed else "implicit-deny"


def denial_message(caller_arn: str, action: str, resource: str, decision: Decision) -> str:
    """AWS's wording for a refused request (IAM User Guide, "Troubleshooting access denied error messages")."""
    why = (
        "with an explicit deny in an identity-based policy"
        if decision == "explicit-deny"
        else f"because no identity-based policy allows the {action} action"
    )
    return f"User: {caller_arn} is not authorized to perform: {action} on resource: {resource} {why}"


LAMBDA_SERVICE = Principal("Service", "lambda.amazonaws.com")
SNS_SERVICE = Principal("Service", "sns.amazonaws.com")


def lambda_may_assume(trust: Mapping[str, Any] | None, role_arn: str) -> bool:
    """Does the role's trust policy let Lambda assume it (as it must, to run a function with it)?"""
    return evaluate([trust], "sts:AssumeRole", role_arn, LAMBDA_SERVICE) == "allow"


def topic_may_send(policy: Mapping[str, Any] | None, queue_arn: str, topic_arn: str) -> bool:
    """Would SQS accept SNS's delivery from this topic? SNS sends as the service principal sns.amazonaws.com, with
    the topic as aws:SourceArn and its owner as aws:SourceAccount; only the queue policy can allow that."""
    context = {"aws:SourceArn": topic_arn, "aws:SourceAccount": parse_arn(topic_arn).account}
    return evaluate([policy], "sqs:SendMessage", queue_arn, SNS_SERVICE, context) == "allow"
