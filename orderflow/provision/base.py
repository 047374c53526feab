"""The model shared by every resource module: what was observed, what must change, and the context to act in.

Each resource module reads its current state (`read`, read calls only) and plans, as typed operations
(`provision/ops.py`), what creating it, converging it to the desired state or deleting it takes. The planner decides
the order of the resources; the executor runs the operations and nothing else.
"""

from __future__ import annotations

import contextlib
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from orderflow.arns import Arns
from orderflow.aws import Aws
from orderflow.provision.grants import Grant
from orderflow.provision.ops import Call, Operation, Retag, Wait, reasons_of
from orderflow.provision.package import LambdaPackage
from orderflow.stack import StackConfig, StackSettings

Action = Literal["create", "update", "unchanged"]


@dataclass
class Context:
    """Everything a resource module needs: where to act, which stack, and injectable time for tests."""

    aws: Aws
    config: StackConfig
    package: LambdaPackage | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    # Reads shared between resource modules during one observation (e.g. the queue's attributes, which the
    # subscription needs too); None outside an observation, so nothing stale survives a write.
    read_cache: dict[Any, Any] | None = None
    # How the target's delays compare to AWS's documented ones (the embedded AWS's `--time-scale`): 1.0 on AWS,
    # the time scale of a realistic embedded AWS, 0 on an instant one. Unsignalled delays (a changed queue policy
    # applies within 60 s, and nothing says when) are waited out at this scale.
    time_scale: float = 1.0

    @contextlib.contextmanager
    def observation(self) -> Iterator[None]:
        """Reads inside share one cache (re-entrant: planning reads what observing already read)."""
        if self.read_cache is not None:
            yield
            return
        self.read_cache = {}
        try:
            yield
        finally:
            self.read_cache = None

    def cached(self, key: Any, read: Callable[[], Any]) -> Any:
        if self.read_cache is None:
            return read()
        if key not in self.read_cache:
            self.read_cache[key] = read()
        return self.read_cache[key]

    @cached_property
    def arns(self) -> Arns:
        return self.aws.arns

    @property
    def settings(self) -> StackSettings:
        return self.config.settings

    def client(self, service: str) -> Any:
        return self.aws.client(service)

    @property
    def poll_interval(self) -> float:
        """Seconds between two polls of a resource's state: an endpoint on this machine answers at once and may
        run AWS's delays at a small time scale; AWS's own state changes take seconds."""
        return 0.1 if self.aws.endpoint_url else 1.0


@dataclass
class Observed:
    """A resource as it exists now. `tags` is None for resources that cannot carry tags."""

    state: dict[str, Any] = field(default_factory=dict)
    tags: dict[str, str] | None = None
    # Why the tags could not be read (e.g. lambda:ListTags denied): then ownership is unknown, never "not ours".
    tags_unreadable: str | None = None


@dataclass(frozen=True)
class Change:
    key: str
    kind: str
    name: str
    action: Action
    operations: tuple[Operation, ...] = ()

    @property
    def details(self) -> tuple[str, ...]:
        """Why: the differences the operations repair (a creation needs none)."""
        return ("will be created",) if self.action == "create" else reasons_of(self.operations)


class Resource(ABC):
    """One AWS resource of the stack. Subclasses keep every boto3 call for that resource: reads in `read`, writes as
    the operations they plan, polls in `check`."""

    key: str
    kind: str
    # For resources that cannot be tagged: the key of the resource whose ownership they share.
    owned_with: str | None = None
    # The resources that must exist before this one can be created (`down` deletes in the reverse order).
    depends_on: tuple[str, ...] = ()

    def deployed_settings(self, observed: Observed) -> dict[str, Any]:
        """The user settings (StackSettings field names) this resource holds as it is deployed now."""
        return {}

    def observed_arn(self, ctx: Context, observed: Observed) -> str:
        """The resource's own ARN as it exists (`status`): for most the ARN its name gives."""
        return self.arn(ctx)

    def held(self, observed: Observed) -> tuple[int, str] | None:
        """The data the resource holds that deleting it destroys: (how many, of what), or None when it holds none
        by nature (a table's orders, a queue's messages)."""
        return None

    def status_detail(self, observed: Observed) -> str | None:
        """A word on the resource's state for `status` (a function Failed, an alarm in ALARM), or None."""
        return None

    def vanishing(self, observed: Observed) -> bool:
        """Still listed, but being deleted (a table DELETING, a mapping Deleting): it counts as missing, and
        creating it again waits until it is gone."""
        return False

    @abstractmethod
    def name(self, ctx: Context) -> str: ...

    @abstractmethod
    def arn(self, ctx: Context) -> str: ...

    @abstractmethod
    def read(self, ctx: Context) -> Observed | None:
        """Current state, or None when the resource does not exist. Read calls only."""

    @abstractmethod
    def create_operations(self, ctx: Context, vanishing: Observed | None) -> list[Operation]:
        """What creating the resource takes; `vanishing` is a same-named one still being deleted, if any."""

    @abstractmethod
    def update_operations(self, ctx: Context, observed: Observed) -> list[Operation]:
        """What converging `observed` to the desired state takes, each with its reasons; empty when converged."""

    @abstractmethod
    def delete_operations(self, ctx: Context, observed: Observed) -> list[Operation]:
        """What removing the resource takes; a resource that is already gone counts as deleted. May read."""

    def check(self, ctx: Context, wait: Wait, params: dict[str, Any]) -> tuple[bool, str]:
        """A named condition of a `Wait`: (reached, the state seen). Resources that plan such waits define it."""
        raise NotImplementedError(f"{self.kind} has no condition {wait.condition!r}")

    def explain(self, ctx: Context, wait: Wait) -> str | None:
        """Why a waiter met a failure state, in AWS's words (None: the waiter's own answer says it)."""
        return None

    def grants(self, ctx: Context) -> list[Grant]:
        """What each orderflow command needs on this resource: its reads, the calls it plans, and what the flows
        do with it (provision/grants.py turns them into the deployer's policy)."""
        return []

    def tag_call(self, ctx: Context) -> Call | None:
        """The service's TagResource call that puts this stack's tags on the resource (None: it carries no tags)."""
        return None

    def plan(self, ctx: Context, observed: Observed | None, vanishing: Observed | None = None) -> Change:
        if observed is None:
            tagging = self.tag_call(ctx)
            retag = [Retag(tagging)] if tagging is not None else []
            operations = (*self.create_operations(ctx, vanishing), *retag)
            return Change(self.key, self.kind, self.name(ctx), "create", operations)
        operations = tuple(self.update_operations(ctx, observed))
        return Change(self.key, self.kind, self.name(ctx), "update" if operations else "unchanged", operations)


def changed(label: str, current: Any, desired: Any) -> list[str]:
    """One diff line when a value differs from what we want."""
    return [] if current == desired else [f"{label}: {current!r} -> {desired!r}"]
