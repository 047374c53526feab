"""The executor: applies a plan, running each step once the steps it depends on are done — independent steps side by
side, so that on AWS's clock `up` takes about as long as its longest chain of waits — and tells a `Progress` what
happens (the CLI renders it)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass

from orderflow.provision.base import Context
from orderflow.provision.planner import DownStep, UpStep


@dataclass
class StepResult:
    key: str
    kind: str
    name: str
    outcome: str
    seconds: float
    details: tuple[str, ...] = ()


class Progress:
    """What the executor reports; this one ignores it all (the CLI's renders it)."""

    def started(self, key: str, kind: str, name: str) -> None:
        pass

    def waiting(self, key: str, text: str) -> None:
        """The step is waiting on AWS: what for, and why."""

    def finished(self, key: str, kind: str, name: str, outcome: str, seconds: float) -> None:
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


class Cancelled(Exception):
    """The run was interrupted (Ctrl-C): a step stops at its next wait."""


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
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                key = running.pop(future)
                error = future.exception()
                if error is None:
                    done.add(key)
                else:
                    errors.append(error)
    except BaseException:
        if cancelled is not None:
            cancelled.set()
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    if errors:
        raise errors[0]


def _watch(ctx: Context, progress: Progress) -> threading.Event:
    """Report waits to `progress`, and make every wait of a step stop once the run is cancelled."""
    ctx.on_wait = progress.waiting
    cancelled = threading.Event()
    sleep = ctx.sleep

    def interruptible_sleep(seconds: float) -> None:
        if sleep is time.sleep:
            if cancelled.wait(seconds):
                raise Cancelled()
            return
        if cancelled.is_set():
            raise Cancelled()
        sleep(seconds)  # an injected sleep (a test's fake clock) advances its own clock

    ctx.sleep = interruptible_sleep
    # Clients are made once, before the steps' threads share them (boto3 clients are thread-safe; making them is not).
    for service in ("dynamodb", "sns", "sqs", "iam", "lambda", "logs"):
        ctx.client(service)
    return cancelled


def _execute(
    ctx: Context,
    progress: Progress,
    concurrent: bool,
    dependencies: dict[str, set[str]],
    order: list[str],
    step: Callable[[str], tuple[str, str, str, Callable[[], None] | None, tuple[str, ...]]],
) -> list[StepResult]:
    """Run each key's work (step(key) -> kind, name, outcome, work or None, details) in dependency order, timed and
    reported to `progress`."""
    cancelled = _watch(ctx, progress)
    results: dict[str, StepResult] = {}

    def run(key: str) -> None:
        kind, name, outcome, work, details = step(key)
        started = time.monotonic()
        if work is not None:
            progress.started(key, kind, name)
            work()
        elapsed = time.monotonic() - started
        progress.finished(key, kind, name, outcome, elapsed)
        results[key] = StepResult(key, kind, name, outcome, elapsed, details)

    run_graph(order, dependencies, run, concurrent, cancelled)
    return [results[key] for key in order]


def apply_up(
    ctx: Context, steps: list[UpStep], progress: Progress = NO_PROGRESS, concurrent: bool = True
) -> list[StepResult]:
    by_key = {s.resource.key: s for s in steps}

    def step(key: str) -> tuple[str, str, str, Callable[[], None] | None, tuple[str, ...]]:
        s = by_key[key]
        change = s.change
        work: Callable[[], None] | None = None
        if change.action == "create":
            work = lambda: s.resource.create(ctx)  # noqa: E731
        elif change.action == "update":
            assert s.observed is not None
            work = lambda: s.resource.update(ctx, s.observed)  # noqa: E731
        outcome = {"create": "created", "update": "updated", "unchanged": "unchanged"}[change.action]
        return change.kind, change.name, outcome, work, change.details

    return _execute(ctx, progress, concurrent, up_dependencies(steps), list(by_key), step)


OUTCOMES = {"delete": "deleted", "absent": "already gone", "foreign": "not ours, left alone", "keep": "kept"}


def apply_down(
    ctx: Context, steps: list[DownStep], progress: Progress = NO_PROGRESS, concurrent: bool = True
) -> list[StepResult]:
    by_key = {s.resource.key: s for s in steps}

    def step(key: str) -> tuple[str, str, str, Callable[[], None] | None, tuple[str, ...]]:
        s = by_key[key]
        work: Callable[[], None] | None = None
        if s.action == "delete":
            assert s.observed is not None
            work = lambda: s.resource.delete(ctx, s.observed)  # noqa: E731
        return s.resource.kind, s.name, OUTCOMES[s.action], work, ()

    return _execute(ctx, progress, concurrent, down_dependencies(steps), list(by_key), step)
