"""The embedded AWS's callers, read in-process from moto's IAM and STS backends: who signs a request, which policies
apply to them, and what `orderflow.iam` decides.

A request signed with an IAM user's access key (CreateAccessKey) is that user's; one signed with keys STS issued by
AssumeRole is that role's session (the functions' and the pollers' too — see runtime/credentials.py). Any other key
is unrestricted, as an administrator's would be. A user's policies are their inline and attached ones and those of
their groups; a role's its inline and attached ones; either may have a permissions boundary, and a session the
session policy it was assumed with. Documents are cached per identity until `invalidate()` (any IAM write).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from orderflow.arns import parse_arn
from orderflow.iam.context import Identity, caller_context
from orderflow.iam.evaluation import Decision, Policies, Principal, Request, Verdict, decide
from orderflow.iam.questions import lambda_may_assume

# Keys whose value changes with the clock: a decision that reads them is never cached.
_CLOCK_KEYS = ("aws:currenttime", "aws:epochtime")


@dataclass(frozen=True)
class Caller:
    """A user or a role session; `arn` is how AWS names it in an AccessDenied message."""

    arn: str
    account: str
    kind: str  # "User" | "AssumedRole"
    name: str  # the user's or the role's name
    unique_id: str
    role_arn: str | None = None
    session_policy: str | None = None

    @property
    def principal(self) -> Principal:
        return Principal("AWS", self.arn, self.account, self.role_arn)


def document(text: Any) -> dict[str, Any]:
    try:
        loaded = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _default_version(policy: Any) -> dict[str, Any] | None:
    version = next((v for v in policy.versions if v.is_default), None)
    return document(version.document) if version is not None else None


@dataclass
class _Loaded:
    policies: Policies
    tags: Mapping[str, str] = field(default_factory=dict)
    text: str = ""  # every document's text, lower-cased: what decides whether a key is ever read

    def mentions(self, key: str) -> bool:
        return key in self.text


class Identities:
    """Decisions for the embedded AWS's callers (see the module's docstring)."""

    def __init__(self) -> None:
        # `local start --realistic`: IAM changes take a while to apply (realism.ControlPlane); None: at once.
        self.plane: Any = None
        self._callers: dict[str, Caller | None] = {}
        # Keys that once belonged to a user or session: deleted or deactivated since, they sign nothing any more
        # (never fall back to the unrestricted default).
        self._issued: set[str] = set()
        self._loaded: dict[str, _Loaded] = {}
        self._decisions: dict[tuple[Any, ...], Verdict] = {}
        self._lock = threading.Lock()
        # Bumped by every invalidation: what was computed from documents read before it is never kept after it.
        self._generation = 0

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._decisions.clear()
            self._loaded.clear()
            # A deleted key or user must stop working; a key not yet known stays unknown (keys are random).
            self._callers = {k: v for k, v in self._callers.items() if v is None}

    def caller(self, access_key: str) -> Caller | None:
        """The user or role session an access key belongs to; None for any other key (unrestricted)."""
        if access_key in self._callers:
            return self._callers[access_key]
        found = _session(access_key) or _user(access_key)
        with self._lock:
            if len(self._callers) > 10_000:
                self._callers.clear()
            self._callers[access_key] = found
            if found is not None:
                self._issued.add(access_key)
        return found

    def revoked(self, access_key: str) -> bool:
        """A key IAM or STS issued that no longer signs (its user, key or role is gone, or the key is Inactive)."""
        return access_key in self._issued and self.caller(access_key) is None

    def _load(self, caller: Caller) -> _Loaded:
        key = caller.role_arn or caller.arn
        loaded = self._loaded.get(key)
        if loaded is None:
            generation = self._generation
            loaded = _role_policies(caller.role_arn, self.plane) if caller.role_arn else _user_policies(caller)
            if not self._propagating(key):
                with self._lock:
                    if generation == self._generation:
                        self._loaded[key] = loaded
        return loaded

    def _propagating(self, role_arn: str) -> bool:
        return self.plane is not None and (
            self.plane.state("role", role_arn) is not None or bool(self.plane.pending_policies(role_arn))
        )

    def authorize(
        self, caller: Caller, action: str, resource: str, region: str, extra: Mapping[str, str] | None = None
    ) -> Verdict:
        """AWS's answer to this caller's request, with the context AWS would supply."""
        generation = self._generation
        loaded = self._load(caller)
        key = (caller.arn, action.lower(), resource, region, tuple(sorted((extra or {}).items())))
        cacheable = not any(loaded.mentions(k) for k in (*_CLOCK_KEYS, "aws:resourcetag"))
        if cacheable and key in self._decisions:
            return self._decisions[key]
        tags = resource_tags(resource) if loaded.mentions("aws:resourcetag") else None
        identity = Identity(caller.principal, caller.kind, caller.unique_id, caller.name, loaded.tags)
        context = {**caller_context(identity, region, resource, tags, epoch=time.time()), **(extra or {})}
        request = Request(action, resource, caller.principal, context)
        # Same account: the resource's own policy counts beside the identity's (a queue policy's Deny refuses).
        held_by_resource = queue_policy(resource) if action.lower().startswith("sqs:") else None
        if held_by_resource is not None and any(k in json.dumps(held_by_resource).lower() for k in _CLOCK_KEYS):
            cacheable = False
        policies = Policies(loaded.policies.identity, held_by_resource, loaded.policies.boundary)
        verdict = decide(policies, request)
        if caller.session_policy and verdict.decision == "allow":
            # A session policy limits a session as a boundary does (evaluation logic, "Session policies").
            session = decide(Policies(identity=[document(caller.session_policy)]), request)
            verdict = session if session.decision != "allow" else verdict
        if cacheable and not self._propagating(caller.role_arn or ""):
            with self._lock:
                if generation == self._generation:
                    self._decisions[key] = verdict
        return verdict

    def decide(self, role_arn: str, action: str, resource: str, region: str | None = None) -> Decision:
        """A session of this role (the runtime's pollers): as `authorize`."""
        arn = parse_arn(role_arn)
        caller = Caller(role_arn, arn.account, "AssumedRole", arn.resource.split("/")[-1], "", role_arn)
        return self.authorize(caller, action, resource, region or _region_of(resource)).decision

    def policies_of(self, caller: Caller) -> Policies:
        return self._load(caller).policies

    def trust(self, role_arn: str) -> dict[str, Any] | None:
        from moto.iam.exceptions import NotFoundException

        try:
            return document(_role(role_arn)[1].assume_role_policy_document)
        except NotFoundException:
            return None

    def lambda_may_assume(self, role_arn: str) -> bool:
        """Read on every invocation and poll: cached like any decision, until the next IAM write (which is also
        when a new role's propagation begins, under --realistic)."""
        known = self._decisions.get(("trust", role_arn))
        if known is not None:
            return known.decision == "allow"
        generation = self._generation
        allowed = lambda_may_assume(self.trust(role_arn), role_arn) and (
            self.plane is None or self.plane.state("role", role_arn) is None
        )
        if not self._propagating(role_arn):
            with self._lock:
                if generation == self._generation:
                    self._decisions[("trust", role_arn)] = Verdict("allow" if allowed else "implicit-deny")
        return allowed


def _region_of(resource: str) -> str:
    """The region a call on this resource is made in (aws:RequestedRegion); "" for a resource without one."""
    return parse_arn(resource).region if resource.startswith("arn:") else ""


def _session(access_key: str) -> Caller | None:
    from moto.sts.models import sts_backends

    for account, backends in list(sts_backends.items()):
        for backend in list(backends.values()):
            assumed = backend.get_assumed_role_from_access_key(access_key)
            if assumed is not None:
                role = assumed.role_arn
                name = role.rsplit("/", 1)[-1]
                partition = parse_arn(role).partition
                arn = f"arn:{partition}:sts::{account}:assumed-role/{name}/{assumed.session_name}"
                role_id = _role_id(role)
                return Caller(arn, account, "AssumedRole", name, f"{role_id}:{assumed.session_name}", role,
                              assumed.policy or None)  # fmt: skip
    return None


def _role_id(role_arn: str) -> str:
    try:
        return str(_role(role_arn)[1].id)
    except Exception:  # noqa: BLE001 - a role deleted since: its sessions keep their name
        return "AROA"


def _user(access_key: str) -> Caller | None:
    from moto.iam.models import iam_backends

    for account, backends in list(iam_backends.items()):
        for partition, backend in list(backends.items()):
            for user in list(backend.users.values()):
                if any(k.access_key_id == access_key and k.status == "Active" for k in user.access_keys):
                    arn = f"arn:{partition}:iam::{account}:user{user.path}{user.name}"
                    return Caller(arn, account, "User", user.name, user.id)
    return None


def _role(role_arn: str) -> tuple[Any, Any]:
    from moto.iam.models import iam_backends

    arn = parse_arn(role_arn)
    backend = iam_backends[arn.account][arn.partition]
    return backend, backend.get_role_by_arn(role_arn)


def _managed(backend: Any, arn: str | None) -> dict[str, Any] | None:
    if not arn:
        return None
    try:
        return _default_version(backend.get_policy(arn))
    except Exception:  # noqa: BLE001 - a boundary whose policy is gone allows nothing, as on AWS
        return {"Statement": []}


def _loaded(identity: list[dict[str, Any]], boundary: dict[str, Any] | None, tags: Mapping[str, str]) -> _Loaded:
    text = json.dumps([identity, boundary]).lower()
    return _Loaded(Policies(identity=identity, boundary=boundary), dict(tags), text)


def _role_policies(role_arn: str, plane: Any) -> _Loaded:
    from moto.iam.exceptions import NotFoundException

    try:
        backend, role = _role(role_arn)
    except NotFoundException:
        return _loaded([], None, {})
    inline = {name: document(text) for name, text in dict(role.policies).items()}
    if plane is not None:
        # A change that has not propagated yet: the previous document (or none) still applies.
        for name, previous in plane.pending_policies(role_arn).items():
            if previous is None:
                inline.pop(name, None)
            else:
                inline[name] = document(previous)
    attached = [d for d in (_default_version(p) for p in list(role.managed_policies.values())) if d is not None]
    tags = {k: v.get("Value", "") for k, v in (role.tags or {}).items()} if isinstance(role.tags, dict) else {}
    return _loaded([*inline.values(), *attached], _managed(backend, role.permissions_boundary_arn), tags)


def _user_policies(caller: Caller) -> _Loaded:
    from moto.iam.models import iam_backends

    backend = iam_backends[caller.account][parse_arn(caller.arn).partition]
    user = backend.users.get(caller.name)
    if user is None:
        return _loaded([], None, {})
    documents = [document(t) for t in dict(user.policies).values()]
    documents += [d for d in (_default_version(p) for p in list(user.managed_policies.values())) if d is not None]
    for group in backend.get_groups_for_user(user.name):
        documents += [document(t) for t in dict(group.policies).values()]
        documents += [d for d in (_default_version(p) for p in list(group.managed_policies.values())) if d]
    boundary = _managed(backend, USER_BOUNDARIES.get(caller.arn))
    tags = {t["Key"]: t["Value"] for t in backend.tagger.list_tags_for_resource(caller.arn).get("Tags", [])}
    return _loaded(documents, boundary, tags)


# moto keeps no permissions boundary for users: the enforcement records PutUserPermissionsBoundary (and CreateUser's
# PermissionsBoundary) here, by user ARN.
USER_BOUNDARIES: dict[str, str] = {}


def resource_tags(resource: str) -> dict[str, str]:
    """A resource's tags for aws:ResourceTag/* (queues, topics, tables, functions); {} when unknown."""
    if not resource.startswith("arn:"):
        return {}
    arn = parse_arn(resource)
    try:
        return _tags_of(arn.service, resource, arn)
    except Exception:  # noqa: BLE001 - a resource that does not exist (yet) has no tags
        return {}


def _tags_of(service: str, resource: str, arn: Any) -> dict[str, str]:
    if service == "sqs":
        from moto.sqs.models import sqs_backends

        return dict(sqs_backends[arn.account][arn.region].get_queue(arn.resource).tags or {})
    if service == "sns":
        from moto.sns.models import sns_backends

        return dict(sns_backends[arn.account][arn.region].topics[resource]._tags)
    if service == "dynamodb":
        from moto.dynamodb.models import dynamodb_backends

        found = dynamodb_backends[arn.account][arn.region].list_tags_of_resource(resource)
        return {t["Key"]: t["Value"] for t in found}
    if service == "lambda":
        from moto.awslambda.models import lambda_backends

        return dict(lambda_backends[arn.account][arn.region].list_tags(resource))
    return {}


def source(arn: str) -> Caller | None:
    """The user or role an ARN names (SimulatePrincipalPolicy's PolicySourceArn); None when there is none."""
    from moto.iam.models import iam_backends

    if not arn.startswith("arn:") or arn.count(":") < 5:
        return None
    parsed = parse_arn(arn)
    backend = iam_backends.get(parsed.account, {}).get(parsed.partition) if parsed.account in iam_backends else None
    kind, _, rest = parsed.resource.partition("/")
    name = rest.rsplit("/", 1)[-1]
    if backend is None or not name:
        return None
    if kind == "user" and name in backend.users:
        return Caller(arn, parsed.account, "User", name, backend.users[name].id)
    if kind == "role":
        role = next((r for r in list(backend.roles.values()) if r.arn == arn), None)
        return Caller(arn, parsed.account, "AssumedRole", name, role.id, arn) if role is not None else None
    return None


def accounts() -> list[str]:
    """The accounts IAM holds identities in (the embedded AWS has one)."""
    from moto.iam.models import iam_backends

    return list(iam_backends.keys())


def queue_policy(queue_arn: str) -> dict[str, Any] | None:
    """A queue's own policy (SQS's resource-based policy), or None."""
    if not queue_arn.startswith("arn:"):
        return None
    from moto.sqs.exceptions import QueueDoesNotExist
    from moto.sqs.models import sqs_backends

    arn = parse_arn(queue_arn)
    try:
        text = sqs_backends[arn.account][arn.region].get_queue(arn.resource).policy
    except (QueueDoesNotExist, KeyError):
        return None
    return document(text) if text else None
