"""What a deployer must be allowed, as data: each resource module declares, beside the calls it makes, the actions
each orderflow command needs on its resource (`Resource.grants`); `deployer_policy` turns them into the IAM policy
document a platform team gives the deployer, scoped to the stack's exact ARNs and nothing more.

The embedded AWS enforces that document for a user whose keys sign the calls (tests/e2e/test_least_privilege.py
runs every command so and removes each statement in turn), so a call a resource gains without its permission fails
a test.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# The commands a deployer runs, in the order a user meets them.
COMMANDS = ("up", "status", "publish-test", "verify", "watch", "trace", "logs", "dlq", "down")
# Who reads the stack's resources to decide what to do: every command that observes them.
OBSERVERS = frozenset({"up", "down", "status"})


def self_arn(partition: str, account: str) -> str:
    """An IAM user's own ARN, resolved per request by IAM (the variables page: `${aws:username}`): the check a
    deployer makes of its own permissions (SimulatePrincipalPolicy) is allowed on itself only."""
    return f"arn:{partition}:iam::{account}:user/${{aws:username}}"


@dataclass(frozen=True)
class Grant:
    """Actions a set of commands needs on resources, under an optional condition."""

    commands: frozenset[str]
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    condition: Mapping[str, Mapping[str, Any]] | None = None
    label: str = ""  # the statement's Sid stem: which resource this is for

    def for_commands(self, commands: Iterable[str]) -> bool:
        return bool(self.commands & set(commands))


def grant(
    commands: Iterable[str],
    actions: Iterable[str],
    *resources: str,
    condition: Mapping[str, Mapping[str, Any]] | None = None,
) -> Grant:
    return Grant(frozenset(commands), tuple(actions), tuple(resources), condition)


def _sid(label: str, n: int) -> str:
    stem = re.sub(r"[^A-Za-z0-9]", "", label.title()) or "Stack"
    return f"{stem}{n}" if n else stem


def statements(grants: Iterable[Grant], commands: Iterable[str]) -> list[dict[str, Any]]:
    """One statement per (resources, condition) of the selected commands, actions sorted and unique; its Sid names
    the first resource that needs it."""
    wanted = set(commands)
    merged: dict[tuple[Any, ...], tuple[Grant, set[str]]] = {}
    for g in grants:
        if g.for_commands(wanted):
            key = (g.resources, repr(sorted((g.condition or {}).items())))
            merged.setdefault(key, (g, set()))[1].update(g.actions)
    found, used = [], {}
    for first, actions in merged.values():
        # Actions with no resource type share one statement on "*", whichever resource needs them.
        label = "no_resource_type" if first.resources == ("*",) and not first.condition else first.label
        n = used[label] = used.get(label, -1) + 1
        statement: dict[str, Any] = {
            "Sid": _sid(label, n),
            "Effect": "Allow",
            "Action": sorted(actions, key=str.lower),
            "Resource": list(first.resources) if len(first.resources) > 1 else first.resources[0],
        }
        if first.condition:
            statement["Condition"] = {op: dict(keys) for op, keys in first.condition.items()}
        found.append(statement)
    return found


def deployer_policy(grants: Iterable[Grant], commands: Iterable[str] = COMMANDS) -> dict[str, Any]:
    """The IAM policy document for a deployer who runs these commands (pure)."""
    return {"Version": "2012-10-17", "Statement": statements(list(grants), commands)}


def unknown_commands(commands: Iterable[str]) -> list[str]:
    return [c for c in commands if c not in COMMANDS]
