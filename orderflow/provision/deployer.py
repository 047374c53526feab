"""The deployer's side of least privilege: the policy a deployer needs for this stack, and asking IAM — before
anything is written — which of those permissions the caller lacks (iam:SimulatePrincipalPolicy, which the embedded
AWS answers with the same evaluator that enforces)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from orderflow.aws import NotAnAwsResponse, error_code, is_access_denied
from orderflow.provision.base import Context
from orderflow.provision.grants import COMMANDS, Grant, deployer_policy, grant, self_arn
from orderflow.provision.planner import RESOURCES

# SimulatePrincipalPolicy takes at most this many resource ARNs per call (IAM API reference).
_ACTIONS_PER_CALL = 100


def stack_grants(ctx: Context, deployer: str | None = None) -> list[Grant]:
    """Every resource's grants, labelled by resource, and the deployer's check of itself: on the deployer's own ARN
    when given (a role's), else on whichever IAM user calls."""
    found = [replace(g, label=r.key) for r in RESOURCES for g in r.grants(ctx)]
    itself = deployer or self_arn(ctx.arns.partition, ctx.arns.account)
    return [*found, replace(grant({"up"}, ("iam:SimulatePrincipalPolicy",), itself), label="self_check")]


def policy(ctx: Context, commands: Iterable[str] = COMMANDS, deployer: str | None = None) -> dict[str, Any]:
    return deployer_policy(stack_grants(ctx, deployer), commands)


@dataclass(frozen=True)
class Missing:
    action: str
    resource: str
    decision: str  # implicitDeny | explicitDeny

    def line(self) -> str:
        why = "an explicit Deny" if self.decision == "explicitDeny" else "no policy allows it"
        return f"{self.action} on {self.resource} ({why})"


def source_arn(caller_arn: str) -> str:
    """What SimulatePrincipalPolicy takes for a caller: a user's ARN, or for a role session its role's ARN."""
    session = re.match(r"^arn:([^:]+):sts::(\d+):assumed-role/([^/]+)/", caller_arn)
    if session:
        partition, account, role = session.groups()
        return f"arn:{partition}:iam::{account}:role/{role}"
    return caller_arn


def _questions(ctx: Context, commands: Iterable[str], source: str) -> dict[tuple[str, str], list[str]]:
    """(resource, condition context as JSON) -> actions (each once), for every grant the commands need."""
    asked: dict[tuple[str, str], list[str]] = {}
    commands = list(commands)
    for g in stack_grants(ctx):
        if not g.for_commands(commands):
            continue
        context = {k: v for keys in (g.condition or {}).values() for k, v in keys.items()}
        for resource in g.resources:
            if "${aws:username}" in resource:
                resource, context = source, {**context, "aws:username": source.rsplit("/", 1)[-1]}
            actions = asked.setdefault((resource, json.dumps(context, sort_keys=True)), [])
            actions += [a for a in g.actions if a not in actions]
    return asked


class CannotCheck(Exception):
    """IAM will not say what the caller may do: why, in one line."""


def missing_permissions(ctx: Context, commands: Iterable[str], principal: str | None = None) -> list[Missing]:
    """What the caller (or `principal`, a user's or role's ARN) may not do of what these commands need; CannotCheck
    when IAM will not say (the caller may not simulate those policies, or is the account's root, whom no policy
    limits)."""
    commands = list(commands)
    caller = principal or ctx.aws.caller_arn
    if caller.endswith(":root"):
        raise CannotCheck(f"{caller} is the account's root user, whom no IAM policy limits")
    source = source_arn(caller)
    iam = ctx.client("iam")
    missing: list[Missing] = []
    try:
        for (resource, context), actions in _questions(ctx, commands, source).items():
            entries = [
                {"ContextKeyName": k, "ContextKeyValues": [v], "ContextKeyType": "string"}
                for k, v in json.loads(context).items()
            ]
            for start in range(0, len(actions), _ACTIONS_PER_CALL):
                answer = iam.simulate_principal_policy(
                    PolicySourceArn=source,
                    ActionNames=actions[start : start + _ACTIONS_PER_CALL],
                    ResourceArns=[resource],
                    ContextEntries=entries,
                )
                missing += [
                    Missing(r["EvalActionName"], r.get("EvalResourceName", resource), r["EvalDecision"])
                    for r in answer["EvaluationResults"]
                    if r["EvalDecision"] != "allowed"
                ]
    except NotImplementedError:  # moto in-process (mock_aws) has no simulator; its server answers as ClientError
        raise CannotCheck("this endpoint does not implement iam:SimulatePrincipalPolicy") from None
    except (ResponseParserError, NotAnAwsResponse):  # a plain moto server answers an HTML 500 for what it lacks
        raise CannotCheck("this endpoint answered iam:SimulatePrincipalPolicy with no IAM response") from None
    except ClientError as e:
        if error_code(e) in ("NotImplemented", "InvalidAction", "UnknownOperationException"):
            raise CannotCheck("this endpoint does not implement iam:SimulatePrincipalPolicy") from None
        if is_access_denied(e):
            raise CannotCheck(
                f"{caller} may not call iam:SimulatePrincipalPolicy on {source}: IAM cannot be asked what it may do"
            ) from None
        if error_code(e) in ("NoSuchEntity", "InvalidInput"):
            raise CannotCheck(f"IAM knows no user or role {source} to simulate") from None
        raise
    return missing


def lacking(count: int) -> str:
    return (
        f"the caller lacks {count} permission(s) this stack needs (listed above): give it `orderflow policy`'s "
        "document, or run as someone who has it"
    )
