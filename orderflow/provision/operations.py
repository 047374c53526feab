"""The three things a user does with a stack's resources: converge them, list them, remove them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from orderflow.errors import Conflict
from orderflow.provision.base import Context
from orderflow.provision.executor import NO_PROGRESS, Progress, StepResult, apply_down, apply_up
from orderflow.provision.package import build_package
from orderflow.provision.planner import DownStep, UpStep, observe, plan_down, plan_up
from orderflow.settings_file import DEFAULT_SOURCE
from orderflow.stack import StackSettings


@dataclass
class UpReport:
    steps: list[UpStep]
    results: list[StepResult] = field(default_factory=list)
    dry_run: bool = False
    warnings: list[str] = field(default_factory=list)
    # Settings the stack holds with another value than `up` converges to: name -> (deployed, desired).
    setting_changes: dict[str, tuple[Any, Any]] = field(default_factory=dict)

    def to_document(self) -> dict[str, Any]:
        """The plan and, after a run, what each step did: each with the same operations."""
        return {
            "dry_run": self.dry_run,
            "warnings": self.warnings,
            "plan": [
                {
                    "resource": s.change.key,
                    "kind": s.change.kind,
                    "name": s.change.name,
                    "action": s.change.action,
                    "details": list(s.change.details),
                    "operations": [op.to_document() for op in s.change.operations],
                }
                for s in self.steps
            ],
            "results": [r.to_document() for r in self.results],
        }

    def reverting(self, sources: dict[str, str]) -> dict[str, tuple[Any, Any]]:
        """Settings the stack holds that `up` puts back to their default because nobody asked for them."""
        return {name: change for name, change in self.setting_changes.items() if sources[name] == DEFAULT_SOURCE}


def setting_changes(steps: list[UpStep], settings: StackSettings) -> dict[str, tuple[Any, Any]]:
    """Which user settings `up` will change, from what to what (pure: read from the observed resources)."""
    changes = {}
    for step in steps:
        if step.observed is None:
            continue
        for name, deployed in step.resource.deployed_settings(step.observed).items():
            desired = getattr(settings, name)
            if deployed is not None and desired is not None and deployed != desired:  # None: not asked, kept
                changes[name] = (deployed, desired)
    return changes


def plan(ctx: Context, made: frozenset[str] = frozenset()) -> list[UpStep]:
    """What `up` would do (reads only); `made`: what this run created (ours, whatever the endpoint says of tags)."""
    if ctx.package is None:
        ctx.package = build_package()
    return plan_up(ctx, made=made)


def converge(
    ctx: Context, dry_run: bool = False, progress: Progress = NO_PROGRESS, concurrent: bool = True
) -> UpReport:
    """Plan (reads only) and, unless dry_run, apply — independent steps side by side unless `concurrent=False`.
    A converged stack gives a plan with no changes."""
    warnings = ctx.settings.validate()
    steps = plan(ctx)
    report = UpReport(
        steps=steps, dry_run=dry_run, warnings=warnings, setting_changes=setting_changes(steps, ctx.settings)
    )
    if not dry_run:
        report.results = apply_up(ctx, steps, progress, concurrent)
        if any(s.change.action != "unchanged" for s in steps):
            report.warnings += read_back(ctx, report, progress, concurrent)
    return report


def read_back(ctx: Context, report: UpReport, progress: Progress, concurrent: bool) -> list[str]:
    """`up` says the stack is up only once every resource reads back as it should be. What another writer (an `up`
    or `down` of this stack elsewhere) changed meanwhile is converged once more; what still differs is an error."""
    made = frozenset(s.resource.key for s in report.steps if s.change.action == "create")
    again = [s for s in plan(ctx, made) if s.change.action != "unchanged"]
    if not again:
        return []
    redone = {r.key: r for r in apply_up(ctx, again, progress, concurrent)}
    report.results = [redone.get(r.key, r) for r in report.results]
    made |= {s.resource.key for s in again if s.change.action == "create"}
    still = [s.change for s in plan(ctx, made) if s.change.action != "unchanged"]
    if still:
        differs = "; ".join(f"{c.kind} {c.name}: {', '.join(c.details)}" for c in still)
        raise Conflict(
            f"the stack is not as `up` left it ({differs}): another up or down of it may be running elsewhere, or "
            "AWS has not caught up; run `orderflow up` again"
        )
    names = ", ".join(f"{s.change.kind} {s.change.name}" for s in again)
    return [f"{names} changed while `up` ran (another up or down of this stack?) and was converged again"]


def left_part_way(ctx: Context) -> str:
    """What an interrupted `up` leaves, and what to do: read back (a second interruption, or a failing read, gives
    the short form)."""
    advice = "run `orderflow up` again to finish it (or `orderflow down` to remove what was made)"
    try:
        rows = inventory(ctx)
    except (Exception, KeyboardInterrupt):  # noqa: BLE001 - the advice stands without the account
        return f"`up` stopped part way: {advice}"
    made = [r for r in rows if r["state"] != "missing"]
    unfinished = [f"{r['kind']} {r['name']}" + (f" ({r['detail']})" if r.get("detail") else "") for r in rows
                  if r["state"] == "missing" or r.get("detail") in TRANSITIONS]  # fmt: skip
    left = f"; not done: {', '.join(unfinished)}" if unfinished else ""
    return f"`up` stopped part way ({len(made)} of {len(rows)} resources exist{left}): {advice}"


# States a resource passes through on its way to being ready (what an interrupted `up` may leave it in).
TRANSITIONS = {"Creating", "Enabling", "Updating", "Pending", "CREATING", "UPDATING", "InProgress"}


def data_question(steps: list[DownStep]) -> str | None:
    """What `down` must ask before it runs: deleting the table deletes the orders in it, deleting a queue the orders
    it holds, deleting the DLQ its dead letters (None: no data at stake)."""
    at_stake = [
        f"{s.resource.kind} {s.name!r} with {'about ' if s.resource.key == 'table' else ''}{s.held[0]} {s.held[1]}"
        for s in reversed(steps)  # in the order `up` makes them: the table first
        if s.action == "delete" and s.held is not None and (s.held[0] > 0 or s.resource.key == "table")
    ]
    return f"Delete {', '.join(at_stake)}?" if at_stake else None


def teardown(
    ctx: Context, steps: list[DownStep] | None = None, progress: Progress = NO_PROGRESS, keep_data: bool = False
) -> list[StepResult]:
    """Remove what the stack owns: the given plan (`plan_down`, which a caller may first show or ask about), else a
    fresh one. Says the stack is down only when nothing it deleted is there any more."""
    steps = steps if steps is not None else plan_down(ctx, keep_data=keep_data)
    results = apply_down(ctx, steps, progress)
    deleted = {s.resource.key for s in steps if s.action in ("delete", "absent")}
    back = [o for o in observe(ctx) if o.resource.key in deleted and o.ownership == "owned"]
    if back:
        names = ", ".join(f"{o.resource.kind} {o.resource.name(ctx)}" for o in back)
        raise Conflict(
            f"{names} exist(s) again after `down` removed the stack: an `up` of it may be running elsewhere; run "
            "`orderflow down` again once it is done"
        )
    return results


def inventory(ctx: Context) -> list[dict[str, Any]]:
    """Every resource with its state: missing / owned / foreign, ARN, and queue depths where they apply."""
    rows = []
    for o in observe(ctx):
        row: dict[str, Any] = {
            "key": o.resource.key,
            "kind": o.resource.kind,
            "name": o.resource.name(ctx),
            "arn": o.resource.observed_arn(ctx, o.observed) if o.observed else o.resource.arn(ctx),
            "state": {"missing": "missing", "owned": "exists", "foreign": "foreign", "unknown": "owner unknown"}[
                o.ownership
            ],
        }
        if o.ownership in ("foreign", "unknown"):
            row["owner"] = o.owner
        if o.observed is not None and "attributes" in o.observed.state:
            attributes = o.observed.state["attributes"]
            row["messages"] = int(attributes.get("ApproximateNumberOfMessages", 0))
            row["in_flight"] = int(attributes.get("ApproximateNumberOfMessagesNotVisible", 0))
        detail = o.resource.status_detail(o.observed) if o.observed is not None else None
        if detail:
            row["detail"] = detail
        rows.append(row)
    return rows
