"""The executor: applies a plan in order and reports progress through a callback (the CLI renders it)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from orderflow.provision.base import Context
from orderflow.provision.planner import DownStep, UpStep

# on_progress(kind, name, phase, seconds): phase is "start" or "done".
ProgressCallback = Callable[[str, str, str, float], None]


@dataclass
class StepResult:
    key: str
    kind: str
    name: str
    outcome: str
    seconds: float
    details: tuple[str, ...] = ()


def no_progress(kind: str, name: str, phase: str, seconds: float) -> None:
    pass


def apply_up(ctx: Context, steps: list[UpStep], on_progress: ProgressCallback = no_progress) -> list[StepResult]:
    results = []
    for step in steps:
        change = step.change
        started = time.monotonic()
        if change.action != "unchanged":
            on_progress(change.kind, change.name, "start", 0.0)
            if change.action == "create":
                step.resource.create(ctx)
            else:
                assert step.observed is not None
                step.resource.update(ctx, step.observed)
        outcome = {"create": "created", "update": "updated", "unchanged": "unchanged"}[change.action]
        elapsed = time.monotonic() - started
        on_progress(change.kind, change.name, "done", elapsed)
        results.append(StepResult(change.key, change.kind, change.name, outcome, elapsed, change.details))
    return results


def apply_down(ctx: Context, steps: list[DownStep], on_progress: ProgressCallback = no_progress) -> list[StepResult]:
    outcomes = {"delete": "deleted", "absent": "already gone", "foreign": "not ours, left alone", "keep": "kept"}
    results = []
    for step in steps:
        kind = step.resource.kind
        started = time.monotonic()
        if step.action == "delete":
            on_progress(kind, step.name, "start", 0.0)
            assert step.observed is not None
            step.resource.delete(ctx, step.observed)
        elapsed = time.monotonic() - started
        on_progress(kind, step.name, "done", elapsed)
        results.append(StepResult(step.resource.key, kind, step.name, outcomes[step.action], elapsed))
    return results
