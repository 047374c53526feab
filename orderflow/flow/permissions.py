"""What must hold for each hop before any order moves, read from the account and judged by IAM's own rules: the
function's handler, the execution role's trust policy, and every permission the role needs on the exact ARN.

On AWS as on the embedded AWS, verify names a missing permission here, before the traffic that would reveal it.
"""

from __future__ import annotations

from dataclasses import dataclass

from botocore.exceptions import ClientError

from orderflow.arns import parse_arn
from orderflow.aws import is_access_denied
from orderflow.iam.context import UNDECIDABLE, Identity, caller_context
from orderflow.iam.evaluation import Policies, Principal, Request, Verdict, decide
from orderflow.iam.questions import lambda_may_assume
from orderflow.provision.base import Context, Observed
from orderflow.provision.policies import Permission, required_permissions
from orderflow.provision.resources.function import HANDLER, Function
from orderflow.provision.resources.role import Role, attached_policy_documents, managed_policy_document

RESTORE = "run `orderflow up` to restore it"
POLICIES = "run `orderflow up` to restore the role's policies"


@dataclass(frozen=True)
class Problem:
    hop: str
    evidence: str
    hint: str = RESTORE


def undecidable(ctx: Context) -> frozenset[str]:
    """The condition keys a check from outside cannot know: on AWS the caller's organization and network path; the
    embedded AWS has neither, so there every key is decided."""
    return UNDECIDABLE if ctx.aws.endpoint_url is None else frozenset()


def role_policies(ctx: Context, role: Observed) -> Policies:
    documents = [*role.state["inline"].values(), *attached_policy_documents(ctx, ctx.config.role_name)]
    boundary = role.state.get("boundary")
    return Policies(documents, None, managed_policy_document(ctx, boundary) if boundary else None)


def role_request(ctx: Context, role: Observed, action: str, resource: str) -> Request:
    """The request a session of the function's role makes, with the context AWS supplies."""
    arn = role.state["arn"]
    session = f"arn:{parse_arn(arn).partition}:sts::{ctx.aws.account}:assumed-role/{ctx.config.role_name}/" + (
        ctx.config.function_name
    )
    principal = Principal("AWS", session, ctx.aws.account, arn)
    identity = Identity(principal, "AssumedRole", "", ctx.config.role_name, role.tags or {})
    context = caller_context(identity, ctx.aws.region, resource)
    return Request(action, resource, principal, context, undecidable(ctx))


def _why(verdict: Verdict, boundary: str | None) -> str:
    capped = f"its permissions boundary {boundary.rsplit('/', 1)[-1]}" if boundary else "its permissions boundary"
    if verdict.by == "permissions boundary":
        return f"an explicit Deny in {capped}" if verdict.decision == "explicit-deny" else f"{capped} does not allow it"
    return "an explicit Deny" if verdict.decision == "explicit-deny" else "no policy allows it"


def role_verdicts(ctx: Context) -> tuple[Observed | None, list[tuple[Permission, Verdict]]]:
    """Each permission the role needs, as AWS would decide it (None: the role does not exist)."""
    role = Role().read(ctx)
    if role is None:
        return None, []
    policies = role_policies(ctx, role)
    return role, [
        (p, decide(policies, role_request(ctx, role, p.action, p.resource)))
        for p in required_permissions(ctx.config, ctx.arns)
    ]


def role_problems(ctx: Context, role: Observed | None, verdicts: list[tuple[Permission, Verdict]]) -> list[Problem]:
    if role is None:
        return [Problem("lambda", f"the execution role {ctx.config.role_name} does not exist")]
    found = []
    if not lambda_may_assume(role.state["trust"], role.state["arn"]):
        found.append(Problem("lambda", "the execution role's trust policy does not let lambda.amazonaws.com assume it"))
    refused: dict[tuple[str, str], list[str]] = {}  # (hop, consequence) -> what the role may not do
    for permission, verdict in verdicts:
        if verdict.decision != "allow" and not verdict.depends_on:
            refused.setdefault((permission.hop, permission.without), []).append(
                f"{permission.action} on {permission.short_resource} ({_why(verdict, role.state.get('boundary'))})"
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


@dataclass(frozen=True)
class Judgement:
    """What is broken before any traffic, and what could not be judged (one line each, said as warnings)."""

    problems: list[Problem]
    notes: list[str]


def judge(ctx: Context) -> Judgement:
    """Everything static that breaks a hop. A caller that may not read IAM or Lambda gets no static check (the
    traffic still proves each hop) and a note naming what was refused; a permission that depends on a key verify
    cannot know is "cannot decide", never a problem."""
    try:
        found = function_problems(ctx)
        role, verdicts = role_verdicts(ctx)
        found += role_problems(ctx, role, verdicts)
    except ClientError as e:
        if is_access_denied(e):
            why = e.response.get("Error", {}).get("Message", "access denied")
            return Judgement([], [f"the static check of the function and its role is skipped: {why}"])
        raise
    undecided = [
        f"cannot decide: {p.action} on {p.short_resource} depends on {', '.join(v.depends_on)}"
        for p, v in verdicts
        if v.depends_on
    ]
    return Judgement(found, undecided)


def problems(ctx: Context) -> list[Problem]:
    return judge(ctx).problems
