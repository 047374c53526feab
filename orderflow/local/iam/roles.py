"""The embedded AWS's view of IAM roles, read in-process from moto's IAM and STS backends.

Who is calling (an access key that STS issued by AssumeRole belongs to that role's session), which policies the
role has (inline and attached), and whether those policies allow an action on a resource — decided by
`orderflow.access` and cached per role until IAM changes.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from orderflow.access import Decision, evaluate, lambda_may_assume
from orderflow.arns import parse_arn


@dataclass(frozen=True)
class Caller:
    """A session of an assumed role: `arn` is how AWS names it in an AccessDenied message."""

    role_arn: str
    session_name: str
    account: str

    @property
    def arn(self) -> str:
        partition = parse_arn(self.role_arn).partition
        return (
            f"arn:{partition}:sts::{self.account}:assumed-role/{self.role_arn.rsplit('/', 1)[-1]}/{self.session_name}"
        )


def _document(text: Any) -> dict[str, Any]:
    try:
        loaded = json.loads(text) if isinstance(text, str) else text
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


class RolePolicies:
    """Decisions for role sessions, cached per (role, action, resource) until `invalidate()` (any IAM write)."""

    def __init__(self) -> None:
        # `local start --realistic`: IAM changes take a while to apply (realism.ControlPlane); None: at once.
        self.plane: Any = None
        self._callers: dict[str, Caller | None] = {}
        self._decisions: dict[tuple[str, str, str], Decision] = {}
        self._lock = threading.Lock()
        # Bumped by every invalidation: a decision computed from policies read before it is never cached after it.
        self._generation = 0

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._decisions.clear()

    def caller(self, access_key: str) -> Caller | None:
        """The role session an access key belongs to, or None for any other key (unrestricted, like an admin's)."""
        if access_key in self._callers:
            return self._callers[access_key]
        from moto.sts.models import sts_backends

        found = None
        for account, backends in list(sts_backends.items()):
            for backend in list(backends.values()):
                assumed = backend.get_assumed_role_from_access_key(access_key)
                if assumed is not None:
                    found = Caller(assumed.role_arn, assumed.session_name, account)
                    break
        # Keys are random and never reused: a key unknown now stays unknown, so both answers can be kept.
        with self._lock:
            if len(self._callers) > 10_000:
                self._callers.clear()
            self._callers[access_key] = found
        return found

    @staticmethod
    def _role(role_arn: str) -> Any:
        from moto.iam.models import iam_backends

        arn = parse_arn(role_arn)
        backend = iam_backends[arn.account][arn.partition]
        return backend, backend.get_role_by_arn(role_arn)

    def policies(self, role_arn: str) -> list[dict[str, Any]]:
        """The role's inline and attached policies as documents; [] when the role no longer exists."""
        from moto.iam.exceptions import NotFoundException

        try:
            backend, role = self._role(role_arn)
        except NotFoundException:
            return []
        inline = {
            name: _document(backend.get_role_policy(role.name, name)[1])
            for name in backend.list_role_policies(role.name)
        }
        if self.plane is not None:
            # A change that has not propagated yet: the previous document (or none) still applies.
            for name, previous in self.plane.pending_policies(role_arn).items():
                if previous is None:
                    inline.pop(name, None)
                else:
                    inline[name] = _document(previous)
        documents = list(inline.values())
        attached, _ = backend.list_attached_role_policies(role.name)
        for policy in attached:
            default = next((v for v in policy.versions if v.is_default), None)
            if default is not None:
                documents.append(_document(default.document))
        return documents

    def trust(self, role_arn: str) -> dict[str, Any] | None:
        from moto.iam.exceptions import NotFoundException

        try:
            _, role = self._role(role_arn)
        except NotFoundException:
            return None
        return _document(role.assume_role_policy_document)

    def _propagating(self, role_arn: str) -> bool:
        return self.plane is not None and (
            self.plane.state("role", role_arn) is not None or bool(self.plane.pending_policies(role_arn))
        )

    def _cached(self, key: tuple[str, str, str], decide: Callable[[], Decision]) -> Decision:
        if self._propagating(key[0]):
            return decide()  # the answer changes with the clock, not only with IAM writes: never cached
        decision = self._decisions.get(key)
        if decision is None:
            generation = self._generation
            decision = decide()
            with self._lock:
                if generation == self._generation:
                    self._decisions[key] = decision
        return decision

    def decide(self, role_arn: str, action: str, resource: str) -> Decision:
        return self._cached(
            (role_arn, action.lower(), resource), lambda: evaluate(self.policies(role_arn), action, resource)
        )

    def lambda_may_assume(self, role_arn: str) -> bool:
        """Read on every invocation and poll: cached like any decision, until the next IAM write."""
        return (
            self._cached(
                (role_arn, "sts:assumerole", "lambda.amazonaws.com"),
                lambda: (
                    "allow"
                    if lambda_may_assume(self.trust(role_arn), role_arn)
                    and (self.plane is None or self.plane.state("role", role_arn) is None)
                    else "implicit-deny"
                ),
            )
            == "allow"
        )
