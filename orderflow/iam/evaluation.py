"""IAM policy evaluation, pure: do these policies let this principal perform this action on this resource?

The one evaluator of orderflow: the embedded AWS's enforcement (callers, execution roles, queue policies), the
simulate APIs it serves, and `verify`'s static check all decide here. It follows AWS's evaluation logic within one
account ("Policy evaluation logic",
https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_evaluation-logic.html, and "Permissions
boundaries for IAM entities", https://docs.aws.amazon.com/IAM/latest/UserGuide/access_policies_boundaries.html):

1. an explicit Deny in any applicable policy (identity-based, resource-based, permissions boundary) wins;
2. a resource-based policy that names the user or the role session itself allows, whatever the boundary says;
3. otherwise an Allow must come from an identity-based policy, or from a resource-based policy naming the role —
   and, when the identity has a permissions boundary, the boundary must allow it too;
4. otherwise the request is implicitly denied. A resource-based policy naming only the account delegates to the
   account's identity policies and grants nothing by itself.

Why not moto's evaluator (moto/iam/access_control.py, 5.2): it ignores every condition operator but StringEquals,
lets a `NotResource` statement allow everything, matches actions case-sensitively and raises on a `{"Service": …}`
principal. Each would make the embedded AWS accept what AWS refuses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from orderflow.iam.conditions import Context, as_values, glob, holds
from orderflow.iam.documents import has_variables, statements, substituter

Decision = Literal["allow", "explicit-deny", "implicit-deny"]
Effect = Literal["Allow", "Deny"]
# How a statement's Principal names the caller: the caller itself (a user, a role session, a service, or everyone),
# the role a session belongs to, or only its account.
Named = Literal["exact", "role", "account"]


@dataclass(frozen=True)
class Principal:
    """Who asks: an AWS service (`Service`, e.g. sns.amazonaws.com) or an IAM identity (`AWS`, the ARN the request
    is made as: a user's, or an assumed-role session's, with `role_arn` the role it belongs to)."""

    kind: Literal["AWS", "Service"]
    id: str
    account: str | None = None
    role_arn: str | None = None


@dataclass(frozen=True)
class Policies:
    """Everything that applies to one request: the identity's policies (inline, attached, its groups'), the
    resource's own policy, and the identity's permissions boundary (None: it has none)."""

    identity: Sequence[Mapping[str, Any] | None] = ()
    resource: Mapping[str, Any] | None = None
    boundary: Mapping[str, Any] | None = None


@dataclass(frozen=True)
class Verdict:
    decision: Decision
    # The kind of policy that decided ("identity-based policy", "resource-based policy", "permissions boundary").
    by: str = "identity-based policy"
    # Context keys the answer depends on that the request context could not hold (verify on AWS): undecided.
    depends_on: tuple[str, ...] = field(default=())

    @property
    def allowed(self) -> bool:
        return self.decision == "allow" and not self.depends_on


def matches(patterns: Any, value: str, case_sensitive: bool = True) -> bool:
    return any(glob(p, case_sensitive).match(value) for p in as_values(patterns))


def _named(element: Any, principal: Principal | None) -> Named | None:
    """How a Principal element names this caller ("AWS JSON policy elements: Principal": `"*"` and `{"AWS": "*"}`
    are equivalent; an account id or its root ARN names the account; a role ARN names the role's sessions)."""
    if element == "*":
        return "exact"
    if principal is None or not isinstance(element, Mapping):
        return None
    if "*" in as_values(element.get("AWS")):
        return "exact"
    wanted = as_values(element.get(principal.kind))
    if principal.kind == "Service":
        return "exact" if principal.id in wanted else None
    if principal.id in wanted:
        return "exact"
    if principal.role_arn is not None and principal.role_arn in wanted:
        return "role"
    account = principal.account
    if account and (account in wanted or any(w == f"arn:{_partition(w)}:iam::{account}:root" for w in wanted)):
        return "account"
    return None


def _partition(arn: str) -> str:
    return arn.split(":", 2)[1] if arn.count(":") >= 2 else "aws"


@dataclass(frozen=True)
class Request:
    action: str
    resource: str
    principal: Principal | None = None
    context: Context = field(default_factory=dict)
    # Keys the context cannot hold (verify on AWS does not know the caller's organization or VPC endpoint).
    undecidable: frozenset[str] = frozenset()


def _resource_matches(patterns: Any, resource: str, policy: Mapping[str, Any] | None, request: Request) -> bool:
    substitute = substituter(request.context) if has_variables(policy) else None
    for pattern in as_values(patterns):
        resolved = substitute(pattern) if substitute is not None else pattern
        if resolved is not None and glob(resolved).match(resource):
            return True
    return False


def _conditions(statement: Mapping[str, Any], policy: Mapping[str, Any] | None, request: Request) -> bool | None:
    """Whether the statement's conditions hold; None when that depends on a key the context cannot hold."""
    substitute = substituter(request.context) if has_variables(policy) else None
    unknown = False
    for operator, keys in (statement.get("Condition") or {}).items():
        for key, wanted in (keys or {}).items():
            if key.lower() in request.undecidable and key not in request.context:
                unknown = True
                continue
            try:
                if not holds(operator, key, wanted, request.context, substitute):
                    return False
            except ValueError:  # an operator IAM added since (documents are checked when the embedded AWS stores them)
                unknown = True
    return None if unknown else True


def statement_applies(
    statement: Mapping[str, Any], request: Request, policy: Mapping[str, Any] | None = None
) -> tuple[bool | None, Named | None]:
    """(applies, how the principal was named): applies is None when it depends on an undecidable key."""
    if "NotAction" in statement:
        if matches(statement["NotAction"], request.action, case_sensitive=False):
            return False, None
    elif not matches(statement.get("Action"), request.action, case_sensitive=False):
        return False, None
    if "NotResource" in statement:
        if _resource_matches(statement["NotResource"], request.resource, policy, request):
            return False, None
    elif "Resource" in statement and not _resource_matches(statement["Resource"], request.resource, policy, request):
        return False, None
    named: Named | None = "exact"
    if "Principal" in statement:
        named = _named(statement["Principal"], request.principal)
        if named is None:
            return False, None
    if "NotPrincipal" in statement and _named(statement["NotPrincipal"], request.principal) is not None:
        return False, None
    return _conditions(statement, policy, request), named


@dataclass
class _Tally:
    deny: bool = False
    allow: Named | None = None  # the strongest naming of an Allow (exact > role > account)
    unknown: set[str] = field(default_factory=set)  # undecidable keys met on the way

    def add(self, effect: str, applies: bool, named: Named | None) -> None:
        if applies and effect == "Deny":
            self.deny = True
        elif applies and effect == "Allow" and named is not None:
            order = ("account", "role", "exact")
            self.allow = named if self.allow is None or order.index(named) > order.index(self.allow) else self.allow


def _tally(policies: Iterable[Mapping[str, Any] | None], request: Request, assume: bool) -> _Tally:
    """What the policies say; a statement that depends on an undecidable key is taken to apply when `assume`."""
    tally = _Tally()
    for policy in policies:
        for statement in statements(policy):
            applies, named = statement_applies(statement, request, policy)
            if applies is None:
                conditions = statement.get("Condition") or {}
                keys = {k for ks in conditions.values() for k in (ks or {}) if k.lower() in request.undecidable}
                tally.unknown |= keys or {"a condition operator this evaluator does not know"}
                applies = assume
            tally.add(str(statement.get("Effect")), applies, named)
    return tally


def _decide(policies: Policies, request: Request, assume: bool) -> tuple[Verdict, set[str]]:
    identity = _tally(policies.identity, request, assume)
    resource = _tally([policies.resource], request, assume)
    boundary = _tally([policies.boundary], request, assume) if policies.boundary is not None else None
    unknown = identity.unknown | resource.unknown | (boundary.unknown if boundary is not None else set())
    kinds = (
        (boundary, "permissions boundary"),
        (resource, "resource-based policy"),
        (identity, "identity-based policy"),
    )
    for tally, by in kinds:
        if tally is not None and tally.deny:
            return Verdict("explicit-deny", by), unknown
    if resource.allow == "exact":  # names the caller itself: no boundary limits it
        return Verdict("allow", "resource-based policy"), unknown
    if request.principal is not None and request.principal.kind == "Service":
        return Verdict("implicit-deny", "resource-based policy"), unknown  # a service has no identity policies
    if identity.allow is None and resource.allow != "role":
        return Verdict("implicit-deny", "identity-based policy"), unknown
    if boundary is not None and boundary.allow is None:
        return Verdict("implicit-deny", "permissions boundary"), unknown
    return Verdict("allow", "identity-based policy"), unknown


def decide(policies: Policies, request: Request) -> Verdict:
    """AWS's decision for one request within one account (the module's docstring gives the rules). With
    undecidable keys, the answer is given only when it is the same whichever way they would go."""
    verdict, unknown = _decide(policies, request, assume=False)
    if not unknown:
        return verdict
    other, _ = _decide(policies, request, assume=True)
    return (
        verdict if other.decision == verdict.decision else Verdict(verdict.decision, verdict.by, tuple(sorted(unknown)))
    )


def evaluate(
    policies: Iterable[Mapping[str, Any] | None],
    action: str,
    resource: str,
    principal: Principal | None = None,
    context: Context | None = None,
) -> Decision:
    """Identity-based policies only (or one resource policy for a service principal): the common question."""
    documents = list(policies)
    request = Request(action, resource, principal, context or {})
    if principal is not None and principal.kind == "Service":
        return decide(Policies(resource=_merged(documents)), request).decision
    return decide(Policies(identity=documents), request).decision


def _merged(documents: Sequence[Mapping[str, Any] | None]) -> Mapping[str, Any] | None:
    found = [s for d in documents for s in statements(d)]
    version = next((d.get("Version") for d in documents if d), None)
    return {"Version": version, "Statement": found} if version else {"Statement": found}


def denial_message(caller_arn: str, action: str, resource: str, verdict: Verdict | Decision) -> str:
    """AWS's wording for a refused request (IAM User Guide, "Troubleshooting access denied error messages")."""
    if isinstance(verdict, str):
        verdict = Verdict(verdict)
    article = "an" if verdict.by[0] in "aeiou" else "a"
    why = (
        f"with an explicit deny in {article} {verdict.by}"
        if verdict.decision == "explicit-deny"
        else f"because no {verdict.by} allows the {action} action"
    )
    return f"User: {caller_arn} is not authorized to perform: {action} on resource: {resource} {why}"
