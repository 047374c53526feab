"""`iam:SimulatePrincipalPolicy` and `iam:SimulateCustomPolicy`, which moto does not have, answered with the same
evaluator that enforces (IAM API reference: SimulatePrincipalPolicy, SimulateCustomPolicy).

As IAM's simulator does, it uses only the context entries the caller passes (no global key is filled in) and lists
the condition keys a statement reads that were not passed under MissingContextValues.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from xml.sax.saxutils import escape

from orderflow.iam.documents import MalformedPolicy, statements, validate
from orderflow.iam.evaluation import Policies, Principal, Request, decide
from orderflow.local.iam.identities import Caller, Identities, document, source

_DECISIONS = {"allow": "allowed", "explicit-deny": "explicitDeny", "implicit-deny": "implicitDeny"}
_NS = "https://iam.amazonaws.com/doc/2010-05-08/"


def members(params: Mapping[str, Any], name: str) -> list[str]:
    """A query-protocol list (`Name.member.1`, `Name.member.2`, …) in order."""
    found = sorted(
        ((int(m.group(1)), str(v)) for k, v in params.items() if (m := re.fullmatch(rf"{name}\.member\.(\d+)", k))),
    )
    return [v for _, v in found]


def context_entries(params: Mapping[str, Any]) -> dict[str, str | list[str]]:
    context: dict[str, str | list[str]] = {}
    for n in range(1, 101):
        key = params.get(f"ContextEntries.member.{n}.ContextKeyName")
        if key is None:
            break
        values = members(params, f"ContextEntries.member.{n}.ContextKeyValues")
        kind = str(params.get(f"ContextEntries.member.{n}.ContextKeyType", "string"))
        context[str(key)] = values if kind.endswith("List") else (values[0] if values else "")
    return context


def _missing(policies: Policies, context: Mapping[str, Any]) -> list[str]:
    documents = [*policies.identity, policies.resource, policies.boundary]
    keys = {k for d in documents for s in statements(d) for ks in (s.get("Condition") or {}).values() for k in ks}
    present = {k.lower() for k in context}
    return sorted(k for k in keys if k.lower() not in present)


def _member(action: str, resource: str, policies: Policies, principal: Principal | None, context: Any) -> str:
    verdict = decide(policies, Request(action, resource, principal, context))
    bounded = ""
    if policies.boundary is not None:
        in_boundary = decide(Policies(identity=[policies.boundary]), Request(action, resource, principal, context))
        allowed = "true" if in_boundary.decision == "allow" else "false"
        bounded = (
            f"<PermissionsBoundaryDecisionDetail><AllowedByPermissionsBoundary>{allowed}"
            "</AllowedByPermissionsBoundary></PermissionsBoundaryDecisionDetail>"
        )
    missing = "".join(f"<member>{escape(k)}</member>" for k in _missing(policies, context))
    return (
        f"<member><EvalActionName>{escape(action)}</EvalActionName><EvalResourceName>{escape(resource)}"
        f"</EvalResourceName><EvalDecision>{_DECISIONS[verdict.decision]}</EvalDecision><MatchedStatements/>"
        f"<MissingContextValues>{missing}</MissingContextValues>{bounded}</member>"
    )


def _inputs(params: Mapping[str, Any], name: str, kind: Any = "identity") -> list[dict[str, Any]]:
    return [validate(text, kind) for text in members(params, name)]


def simulate(operation: str, params: Mapping[str, Any], identities: Identities) -> str:
    """The XML answer; raises MalformedPolicy for a document IAM would refuse, LookupError for an unknown source."""
    actions = members(params, "ActionNames")
    resources = members(params, "ResourceArns") or ["*"]
    context = context_entries(params)
    extra = _inputs(params, "PolicyInputList")
    boundaries = _inputs(params, "PermissionsBoundaryPolicyInputList")
    resource_policy = validate(params["ResourcePolicy"], "resource") if params.get("ResourcePolicy") else None
    principal: Principal | None = None
    if operation == "SimulatePrincipalPolicy":
        found: Caller | None = source(str(params.get("PolicySourceArn", "")))
        if found is None:
            raise LookupError(params.get("PolicySourceArn"))
        loaded = identities.policies_of(found)
        principal = found.principal
        policies = Policies(
            [*loaded.identity, *extra], resource_policy, boundaries[0] if boundaries else loaded.boundary
        )
    else:
        policies = Policies(extra, resource_policy, boundaries[0] if boundaries else None)
    if params.get("CallerArn"):
        principal = Principal("AWS", str(params["CallerArn"]), str(params["CallerArn"]).split(":")[4])
    results = "".join(_member(a, r, policies, principal, context) for a in actions for r in resources)
    return (
        f'<{operation}Response xmlns="{_NS}"><{operation}Result><IsTruncated>false</IsTruncated>'
        f"<EvaluationResults>{results}</EvaluationResults></{operation}Result>"
        f"<ResponseMetadata><RequestId>orderflow-local</RequestId></ResponseMetadata></{operation}Response>"
    )


__all__ = ["MalformedPolicy", "document", "simulate"]
