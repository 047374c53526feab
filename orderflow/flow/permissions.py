"""What must hold for each hop before any order moves, read from the account and judged by IAM's own rules: the
function's handler, the execution role's trust policy, and every permission the role needs on the exact ARN.

On AWS as on the embedded AWS, verify names a missing permission here, before the traffic that would reveal it.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from orderflow.access import evaluate, lambda_may_assume
from orderflow.aws import is_access_denied
from orderflow.provision.base import Context
from orderflow.provision.policies import required_permissions
from orderflow.provision.resources.function import HANDLER, Function
from orderflow.provision.resources.role import Role, attached_policy_documents

RESTORE = "run `orderflow up` to restore it"
POLICIES = "run `orderflow up` to restore the role's policies"


@dataclass(frozen=True)
class Problem:
    hop: str
    evidence: str
    hint: str = RESTORE


def role_problems(ctx: Context) -> list[Problem]:
    role = Role().read(ctx)
    if role is None:
        return [Problem("lambda", f"the execution role {ctx.config.role_name} does not exist")]
    found = []
    if not lambda_may_assume(role.state["trust"], role.state["arn"]):
        found.append(Problem("lambda", "the execution role's trust policy does not let lambda.amazonaws.com assume it"))
    documents = [*role.state["inline"].values(), *attached_policy_documents(ctx, ctx.config.role_name)]
    refused: dict[tuple[str, str], list[str]] = {}  # (hop, consequence) -> what the role may not do
    for permission in required_permissions(ctx.config, ctx.arns):
        decision = evaluate(documents, permission.action, permission.resource)
        if decision != "allow":
            why = "an explicit Deny" if decision == "explicit-deny" else "no policy allows it"
            refused.setdefault((permission.hop, permission.without), []).append(
                f"{permission.action} on {permission.short_resource} ({why})"
            )
    found += [
        Problem(hop, f"the execution role may not call {' or '.join(what)}: {without}", POLICIES)
        for (hop, without), what in refused.items()
    ]
    return found


def function_problems(ctx: Context) -> list[Problem]:
    function = Function().read(ctx)
    if function is None:
        return [Problem("lambda", f"the function {ctx.config.function_name} does not exist", "run `orderflow up`")]
    handler = function.state["Handler"]
    if handler != HANDLER:
        return [Problem("lambda", f"the function's handler is {handler!r}, not {HANDLER!r}: every invocation fails")]
    return []


def problems(ctx: Context) -> list[Problem]:
    """Everything static that breaks a hop; [] when the caller may not read IAM or Lambda (nothing to judge)."""
    try:
        return function_problems(ctx) + role_problems(ctx)
    except ClientError as e:
        if is_access_denied(e):  # reading IAM needs iam:Get*/List*: no static check rather than a failed verify
            return []
        raise
