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


def apply_up(
    ctx: Context, steps: list[UpStep], progress: Progress = NO_PROGRESS, concurrent: bool = True
) -> list[StepResult]:
    cancelled = _watch(ctx, progress)
    by_key = {s.resource.key: s for s in steps}
    results: dict[str, StepResult] = {}

    def run(key: str) -> None:
        step = by_key[key]
        change = step.change
        started = time.monotonic()
        if change.action != "unchanged":
            progress.started(key, change.kind, change.name)
            if change.action == "create":
                step.resource.create(ctx)
            else:
                assert step.observed is not None
                step.resource.update(ctx, step.observed)
        outcome = {"create": "created", "update": "updated", "unchanged": "unchanged"}[change.action]
        elapsed = time.monotonic() - started
        progress.finished(key, change.kind, change.name, outcome, elapsed)
        results[key] = StepResult(change.key, change.kind, change.name, outcome, elapsed, change.details)

    run_graph(list(by_key), up_dependencies(steps), run, concurrent, cancelled)
    return [results[key] for key in by_key]


OUTCOMES = {"delete": "deleted", "absent": "already gone", "foreign": "not ours, left alone", "keep": "kept"}


def apply_down(
    ctx: Context, steps: list[DownStep], progress: Progress = NO_PROGRESS, concurrent: bool = True
) -> list[StepResult]:
    cancelled = _watch(ctx, progress)
    by_key = {s.resource.key: s for s in steps}
    results: dict[str, StepResult] = {}

    def run(key: str) -> None:
        step = by_key[key]
        kind = step.resource.kind
        started = time.monotonic()
        if step.action == "delete":
            progress.started(key, kind, step.name)
            assert step.observed is not None
            step.resource.delete(ctx, step.observed)
        elapsed = time.monotonic() - started
        progress.finished(key, kind, step.name, OUTCOMES[step.action], elapsed)
        results[key] = StepResult(key, kind, step.name, OUTCOMES[step.action], elapsed)

    run_graph(list(by_key), down_dependencies(steps), run, concurrent, cancelled)
    return [results[key] for key in by_key]
