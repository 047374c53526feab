"""The three things a user does with a stack's resources: converge them, list them, remove them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orderflow.provision.base import Context
from orderflow.provision.executor import ProgressCallback, StepResult, apply_down, apply_up, no_progress
from orderflow.provision.package import build_package
from orderflow.provision.planner import DownStep, UpStep, observe, plan_down, plan_up


@dataclass
class UpReport:
    steps: list[UpStep]
    results: list[StepResult] = field(default_factory=list)
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)


def converge(ctx: Context, dry_run: bool = False, on_progress: ProgressCallback = no_progress) -> UpReport:
    """Plan (reads only) and, unless dry_run, apply. A converged stack gives a plan with no changes."""
    warnings = ctx.settings.validate()
    if ctx.package is None:
        ctx.package = build_package()
    steps = plan_up(ctx)
    report = UpReport(steps=steps, dry_run=dry_run, warnings=warnings)
    if not dry_run:
        report.results = apply_up(ctx, steps, on_progress)
    return report


def plan_teardown(ctx: Context, keep_data: bool = False) -> list[DownStep]:
    return plan_down(ctx, keep_data=keep_data)


def teardown(ctx: Context, steps: list[DownStep], on_progress: ProgressCallback = no_progress) -> list[StepResult]:
    return apply_down(ctx, steps, on_progress)


def inventory(ctx: Context) -> list[dict[str, Any]]:
    """Every resource with its state: missing / owned / foreign, ARN, and queue depths where they apply."""
    rows = []
    for o in observe(ctx):
        row: dict[str, Any] = {
            "key": o.resource.key,
            "kind": o.resource.kind,
            "name": o.resource.name(ctx),
            "arn": o.resource.arn(ctx),
            "state": {"missing": "missing", "owned": "exists", "foreign": "foreign"}[o.ownership],
        }
        if o.ownership == "foreign":
            row["owner"] = o.owner
        if o.observed is not None and "attributes" in o.observed.state:
            attributes = o.observed.state["attributes"]
            row["messages"] = int(attributes.get("ApproximateNumberOfMessages", 0))
            row["in_flight"] = int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0))
        if o.resource.key == "trigger" and o.observed is not None:
            row["detail"] = o.observed.state.get("State")
        rows.append(row)
    return rows
