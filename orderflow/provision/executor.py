"""The executor: applies a plan, running each step once the steps it depends on are done — independent steps side by
side, so that on AWS's clock `up` takes about as long as its longest chain of waits — and tells a `Progress` what
happens (the CLI renders it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from enum import Enum
from typing import Any

from orderflow.provision.base import Context, Resource
from orderflow.provision.ops import Operation, Pause
from orderflow.provision.planner import DownStep, UpStep
from orderflow.provision.waits import StepRun


class Outcome(str, Enum):
    """What happened to a resource; the value is the word a user reads."""

    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    DELETED = "deleted"
    ABSENT = "already gone"
    FOREIGN = "not ours, left alone"
    KEPT = "kept"

    def __str__(self) -> str:
        return self.value


UP_OUTCOMES = {"create": Outcome.CREATED, "update": Outcome.UPDATED, "unchanged": Outcome.UNCHANGED}
DOWN_OUTCOMES = {"delete": Outcome.DELETED, "absent": Outcome.ABSENT, "foreign": Outcome.FOREIGN, "keep": Outcome.KEPT}


@dataclass
class StepResult:
    key: str
    kind: str
    name: str
    outcome: Outcome
    seconds: float
    details: tuple[str, ...] = ()
    # The operations the step ran: the same objects the plan (and `--dry-run`) shows.
    operations: tuple[Operation, ...] = ()

    def to_document(self) -> dict[str, Any]:
        return {
            "resource": self.key,
            "name": self.name,
            "outcome": self.outcome.value,
            "seconds": round(self.seconds, 3),
            "details": list(self.details),
            "operations": [op.to_document() for op in self.operations],
        }


class Progress:
    """What the executor reports; this one ignores it all (the CLI's renders it)."""

    def started(self, key: str, kind: str, name: str) -> None:
        pass

    def waiting(self, key: str, text: str) -> None:
        """The step is waiting on AWS: what for, and why."""

    def finished(self, key: str, kind: str, name: str, outcome: Outcome, seconds: float) -> None:
        pass


NO_PROGRESS = Progress()


def up_dependencies(steps: list[UpStep]) -> dict[str, set[str]]:
    """Each step waits for the steps of the resources it depends on."""
    keys = {s.resource.key for s in steps}
    return {s.resource.key: set(s.resource.depends_on) & keys for s in steps}


def down_dependencies(steps: list[DownStep]) -> dict[str, set[str]]:
    """The reverse: a resource is deleted only once everything that depends on it is gone."""
    keys = {s.resource.key for s in steps}
    return {key: {s.resource.key for s in steps if key in s.resource.depends_on} & keys for key in keys}


def run_graph(
    order: list[str],
    dependencies: dict[str, set[str]],
    run: Callable[[str], None],
    concurrent: bool,
    cancelled: threading.Event | None = None,
) -> None:
    """Run every key once its dependencies have run; `concurrent=False` runs them one by one in `order`. After a
    failure nothing new starts, the running steps finish, and the first error is raised. Interrupted (Ctrl-C), it
    sets `cancelled` so that running steps stop at their next wait, and returns at once."""
    if not concurrent:
        for key in order:
            run(key)
        return
    done: set[str] = set()
    pending = list(order)
    running: dict[Future[None], str] = {}
    errors: list[BaseException] = []
    pool = ThreadPoolExecutor(max_workers=max(1, len(order)), thread_name_prefix="orderflow-step")
    try:
        while pending or running:
            if not errors:
                for key in [k for k in pending if dependencies[k] <= done]:
                    pending.remove(key)
                    running[pool.submit(run, key)] = key
            if not running:
                if pending and not errors:
                    raise RuntimeError(f"steps {pending} depend on each other or on a step that is not planned")
                break
            _collect(running, done, errors)
    except BaseException:
        if cancelled is not None:
            cancelled.set()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    if errors:
        raise errors[0]


def _collect(running: dict[Future[None], str], done: set[str], errors: list[BaseException]) -> None:
    """Wait for at least one running step to end; record it as done, or its error."""
    finished, _ = wait(running, return_when=FIRST_COMPLETED)
    for future in finished:
        key = running.pop(future)
        error = future.exception()
        if error is None:
            done.add(key)
        else:
            errors.append(error)


@dataclass
class _Work:
    resource: Resource
    name: str
    outcome: Outcome
    operations: tuple[Operation, ...]
    details: tuple[str, ...] = ()


def _execute(
    ctx: Context, progress: Progress, concurrent: bool, dependencies: dict[str, set[str]], work: dict[str, _Work]
) -> list[StepResult]:
    """Run each step's operations in dependency order, timed and reported to `progress`. One cancel token for the
    run: Ctrl-C stops every running step at its next wait (the context is never changed)."""
    cancelled = threading.Event()
    results: dict[str, StepResult] = {}
    # Clients are made once, before the steps' threads share them (boto3 clients are thread-safe; making them is not):
    # those of the services the plan's calls and waits use.
    for service in {op.service for w in work.values() for op in w.operations if not isinstance(op, Pause)}:
        ctx.client(service)

    def run(key: str) -> None:
        w = work[key]
        started = time.monotonic()
        if w.operations:
            progress.started(key, w.resource.kind, w.name)
            step = StepRun(ctx, w.resource, lambda text: progress.waiting(key, text), cancelled)
            for operation in w.operations:
                step.run(operation)
        elapsed = time.monotonic() - started
        progress.finished(key, w.resource.kind, w.name, w.outcome, elapsed)
        results[key] = StepResult(key, w.resource.kind, w.name, w.outcome, elapsed, w.details, w.operations)

    run_graph(list(work), dependencies, run, concurrent, cancelled)
    return [results[key] for key in work]


def apply_up(
    ctx: Context, steps: list[UpStep], progress: Progress = NO_PROGRESS, concurrent: bool = True
) -> list[StepResult]:
    work = {
        s.resource.key: _Work(
            s.resource, s.change.name, UP_OUTCOMES[s.change.action], s.change.operations, s.change.details
        )
        for s in steps
    }
    return _execute(ctx, progress, concurrent, up_dependencies(steps), work)


def apply_down(
    ctx: Context, steps: list[DownStep], progress: Progress = NO_PROGRESS, concurrent: bool = True
) -> list[StepResult]:
    work = {s.resource.key: _Work(s.resource, s.name, DOWN_OUTCOMES[s.action], s.operations, s.details) for s in steps}
    return _execute(ctx, progress, concurrent, down_dependencies(steps), work)
