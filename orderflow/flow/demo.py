"""The seed guide's ten steps, start to finish, on an AWS endpoint the caller provides (the CLI starts an embedded
one): up, publish the sample order, verify every hop, read the item and the log lines back, down. What happens is
told to a `DemoStages` as it happens (the CLI renders it) and returned as a `DemoReport`."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from orderflow.flow import logs as logs_flow
from orderflow.flow import publish
from orderflow.flow import verify as verify_flow
from orderflow.provision import operations
from orderflow.provision.base import Context
from orderflow.provision.executor import NO_PROGRESS, Outcome, Progress, StepResult


class DemoStages:
    """Told each stage as it starts and ends; this one ignores it all (the CLI's renders it)."""

    @contextlib.contextmanager
    def converging(self) -> Iterator[Progress]:
        yield NO_PROGRESS

    def converged(self, ctx: Context, report: operations.UpReport) -> None: ...

    def publishing(self) -> None: ...

    def published(self, order: publish.Published) -> None: ...

    @contextlib.contextmanager
    def verifying(self) -> Iterator[None]:
        yield

    def verified(self, report: verify_flow.VerifyReport, item: Any, lines: list[logs_flow.LogEvent]) -> None: ...

    @contextlib.contextmanager
    def tearing_down(self) -> Iterator[Progress]:
        yield NO_PROGRESS

    def torn_down(self, results: list[StepResult], left: list[dict[str, Any]]) -> None: ...


@dataclass
class DemoReport:
    order: publish.Published
    verify: verify_flow.VerifyReport
    item: Any
    left: list[dict[str, Any]]

    @property
    def passed(self) -> bool:
        return self.verify.passed and not self.left

    @property
    def failure(self) -> str | None:
        """Why the demo failed, in one line (None when it passed)."""
        if self.passed:
            return None
        failed = self.verify.first_failure
        return f"hop '{failed.hop}': {failed.evidence}" if failed else "resources left behind"

    def to_document(self) -> dict[str, Any]:
        return {
            "ok": self.passed,
            **({} if self.passed else {"code": "check-failed"}),
            "orderId": self.order.order_id,
            "item": self.item,
            "checks": [{"hop": c.hop, "passed": c.passed, "evidence": c.evidence} for c in self.verify.checks],
        }


def run(ctx: Context, timeout: float, stages: DemoStages) -> DemoReport:
    """Every step of the guide on `ctx`'s endpoint; the stack is taken down whatever the verification found."""
    with stages.converging() as progress:
        up_report = operations.converge(ctx, progress=progress)
    stages.converged(ctx, up_report)
    stages.publishing()
    [order] = publish.publish_orders(ctx.aws, ctx.config, [publish.sample_order()])
    stages.published(order)
    with stages.verifying():
        report = verify_flow.verify(ctx.aws, ctx.config, order.order_id, order, timeout=timeout)
    item = verify_flow.stored_order(ctx.aws, ctx.config, order.order_id)
    lines = logs_flow.fetch_events(ctx.aws, ctx.config, order.published_ms - 60_000)
    stages.verified(report, item, lines[-8:])
    with stages.tearing_down() as progress:
        results = operations.teardown(ctx, progress=progress)
    left = [r for r in operations.inventory(ctx) if r["state"] != "missing"]
    stages.torn_down(results, left)
    return DemoReport(order, report, item, left)


def removed(results: list[StepResult]) -> int:
    return sum(r.outcome == Outcome.DELETED for r in results)
