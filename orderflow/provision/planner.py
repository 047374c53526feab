"""The planner: observes every resource of the stack (reads only) and decides what `up` or `down` must do.

Plans are plain data, so `--dry-run` can render them without a single write call.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from orderflow.errors import ForeignResourceError, ManagedElsewhere, OwnershipUnknownError
from orderflow.provision.base import Change, Context, Observed, Resource
from orderflow.provision.ops import Operation
from orderflow.provision.resources.alarm import AlertsTopic, DlqAlarm
from orderflow.provision.resources.function import Function
from orderflow.provision.resources.log_group import LogGroup
from orderflow.provision.resources.queues import DeadLetterQueue, OrderQueue
from orderflow.provision.resources.role import Role
from orderflow.provision.resources.subscription import Subscription
from orderflow.provision.resources.table import Table
from orderflow.provision.resources.topic import Topic
from orderflow.provision.resources.trigger import Trigger
from orderflow.stack import CLOUDFORMATION_STACK_TAG, STACK_TAG

# Dependency order: each resource only refers to resources above it (`depends_on` says which; the executor runs
# independent steps side by side).
RESOURCES: tuple[Resource, ...] = (
    Table(),
    Topic(),
    AlertsTopic(),
    DeadLetterQueue(),
    DlqAlarm(),
    OrderQueue(),
    Subscription(),
    Role(),
    LogGroup(),
    Function(),
    Trigger(),
)

Ownership = Literal["missing", "owned", "foreign", "unknown"]
TeardownAction = Literal["delete", "absent", "foreign", "keep"]


@dataclass
class Observation:
    resource: Resource
    observed: Observed | None
    ownership: Ownership
    owner: str | None = None
    # A same-named resource still being deleted (observed is then None): creating it again waits for it to go.
    vanishing: Observed | None = None


@dataclass
class UpStep:
    resource: Resource
    observed: Observed | None
    change: Change


@dataclass
class DownStep:
    resource: Resource
    observed: Observed | None
    action: TeardownAction
    name: str
    operations: tuple[Operation, ...] = ()
    # The data it holds, which deleting it destroys: (how many, of what); None for a resource that holds none.
    held: tuple[int, str] | None = None

    @property
    def details(self) -> tuple[str, ...]:
        """What became of its data, for the user."""
        if self.held is None or (self.held[0] == 0 and self.action != "keep"):
            return ()
        count, what = self.held
        return (f"kept, with its {count} {what}",) if self.action == "keep" else (f"{count} {what} deleted with it",)


def observe(ctx: Context, made: frozenset[str] = frozenset()) -> list[Observation]:
    """Read every resource once and decide whose it is: ours by tag, or by the tagged resource it hangs off. `made`:
    the resources this run created, which are ours even where an endpoint lost (or cannot report) their tags."""
    observations: dict[str, Observation] = {}
    with ctx.observation():
        reads = [(resource, resource.read(ctx)) for resource in RESOURCES]
    for resource, observed in reads:
        if observed is not None and resource.vanishing(observed):
            # being deleted: it is missing for every purpose but the wait before creating it again
            observation = Observation(resource, None, "missing", vanishing=observed)
        elif observed is None:
            observation = Observation(resource, None, "missing")
        elif observed.tags_unreadable is not None:
            observation = Observation(resource, observed, "unknown", observed.tags_unreadable)
        elif resource.owned_with is not None:
            parent = observations[resource.owned_with]
            ownership: Ownership = parent.ownership if parent.ownership in ("foreign", "unknown") else "owned"
            observation = Observation(resource, observed, ownership, parent.owner)
        else:
            owner = (observed.tags or {}).get(STACK_TAG)
            ours = ctx.config.owns(observed.tags) or (resource.key in made and owner is None)
            observation = Observation(resource, observed, "owned" if ours else "foreign", owner)
        observations[resource.key] = observation
    return list(observations.values())


def refuse_unknown_ownership(ctx: Context, observations: list[Observation]) -> None:
    """A resource whose tags cannot be read may be ours or not: acting on it either way could be wrong."""
    for o in observations:
        if o.ownership == "unknown" and o.resource.owned_with is None:
            raise OwnershipUnknownError(
                f"Cannot tell whether {o.resource.kind} {o.resource.name(ctx)!r} belongs to stack "
                f"{ctx.config.name!r}: {o.owner}. orderflow proves ownership by its tags; grant the permission to "
                "read them and run the command again. Nothing was changed"
            )


def refuse_managed(ctx: Context, command: str, observations: Sequence[Observation] = ()) -> None:
    """A stack CloudFormation (or another tool) manages is proven by orderflow, never changed by it: resolved from
    it (--from-cloudformation, orderflow.toml's resources), or found carrying CloudFormation's stack tag (a stack
    `orderflow export` made has orderflow's names and tags too)."""
    if ctx.config.managed_by:
        raise ManagedElsewhere(ctx.config.managed_by, command)
    for o in observations:
        stack = ((o.observed.tags if o.observed else None) or {}).get(CLOUDFORMATION_STACK_TAG)
        if stack:
            raise ManagedElsewhere(
                f"CloudFormation stack {stack!r} ({o.resource.kind} {o.resource.name(ctx)!r})", command
            )


def plan_up(
    ctx: Context, observations: list[Observation] | None = None, made: frozenset[str] = frozenset()
) -> list[UpStep]:
    """What `up` will do, in order. Refuses (ForeignResourceError) if any same-named resource is not ours."""
    refuse_managed(ctx, "up")
    with ctx.observation():  # planning may read what observing read (the queue's policy, for the subscription)
        observations = observations if observations is not None else observe(ctx, made)
        refuse_managed(ctx, "up", observations)
        refuse_unknown_ownership(ctx, observations)
        for o in observations:
            if o.ownership == "foreign":
                raise ForeignResourceError(o.resource.kind, o.resource.name(ctx), ctx.config.name, o.owner)
        return [UpStep(o.resource, o.observed, o.resource.plan(ctx, o.observed, o.vanishing)) for o in observations]


def plan_down(ctx: Context, keep_data: bool = False, observations: list[Observation] | None = None) -> list[DownStep]:
    """What `down` will do, in reverse dependency order. Foreign resources are listed but never touched."""
    refuse_managed(ctx, "down")
    observations = observations if observations is not None else observe(ctx)
    refuse_managed(ctx, "down", observations)
    refuse_unknown_ownership(ctx, observations)
    kept = _kept(observations) if keep_data else set()
    steps = []
    for o in reversed(observations):
        if o.ownership == "missing":
            action: TeardownAction = "absent"
        elif o.ownership == "foreign":
            action = "foreign"
        elif o.resource.key in kept:
            action = "keep"
        else:
            action = "delete"
        operations = tuple(o.resource.delete_operations(ctx, o.observed)) if o.observed and action == "delete" else ()
        held = o.resource.held(o.observed) if o.observed else None
        steps.append(DownStep(o.resource, o.observed, action, o.resource.name(ctx), operations, held))
    return steps


def _kept(observations: list[Observation]) -> set[str]:
    """What `--keep-data` keeps: the table, every queue holding messages, and the DLQ a kept queue redrives to (so a
    kept order that keeps failing still has somewhere to go)."""
    holding = {
        o.resource.key
        for o in observations
        if o.ownership == "owned" and o.observed is not None and (o.resource.held(o.observed) or (0, ""))[0] > 0
    }
    kept = {"table"} | (holding & {"queue", "dlq"})
    return kept | ({"dlq"} if "queue" in kept else set())
