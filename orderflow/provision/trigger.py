"""Event source mapping OrderQueue -> ProcessOrderFunction, with partial batch failure reporting."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from orderflow.aws import is_not_found
from orderflow.provision.base import Context, Observed, Resource, changed

RESPONSE_TYPES = ["ReportBatchItemFailures"]


def find_mapping(ctx: Context) -> dict[str, Any] | None:
    """The mapping from this stack's queue to its function, if any."""
    paginator = ctx.client("lambda").get_paginator("list_event_source_mappings")
    try:
        for page in paginator.paginate(
            EventSourceArn=ctx.arns.queue(ctx.config.queue_name), FunctionName=ctx.config.function_name
        ):
            for mapping in page.get("EventSourceMappings", []):
                if mapping.get("State") not in ("Deleting",):
                    return mapping
    except ClientError as e:
        if is_not_found(e):
            return None
        raise
    return None


class Trigger(Resource):
    key = "trigger"
    kind = "SQS trigger"
    owned_with = "function"

    def name(self, ctx: Context) -> str:
        return f"{ctx.config.queue_name} -> {ctx.config.function_name}"

    def arn(self, ctx: Context) -> str:
        return ctx.arns.function(ctx.config.function_name)

    def desired(self, ctx: Context) -> dict[str, Any]:
        return {
            "BatchSize": ctx.settings.batch_size,
            "MaximumBatchingWindowInSeconds": ctx.settings.batching_window,
            "FunctionResponseTypes": RESPONSE_TYPES,
            "Enabled": True,
        }

    def read(self, ctx: Context) -> Observed | None:
        mapping = find_mapping(ctx)
        if mapping is None:
            return None
        return Observed(
            state={
                "UUID": mapping["UUID"],
                "BatchSize": mapping.get("BatchSize"),
                "MaximumBatchingWindowInSeconds": mapping.get("MaximumBatchingWindowInSeconds", 0),
                "FunctionResponseTypes": mapping.get("FunctionResponseTypes", []),
                "Enabled": mapping.get("State") in ("Enabled", "Enabling", "Creating", "Updating"),
                "State": mapping.get("State"),
            }
        )

    def diff(self, ctx: Context, observed: Observed) -> list[str]:
        return [
            line for key, value in self.desired(ctx).items() for line in changed(key, observed.state.get(key), value)
        ]

    def create(self, ctx: Context) -> None:
        ctx.client("lambda").create_event_source_mapping(
            EventSourceArn=ctx.arns.queue(ctx.config.queue_name),
            FunctionName=ctx.config.function_name,
            **self.desired(ctx),
        )

    def update(self, ctx: Context, observed: Observed) -> None:
        ctx.client("lambda").update_event_source_mapping(UUID=observed.state["UUID"], **self.desired(ctx))

    def delete(self, ctx: Context, observed: Observed) -> None:
        try:
            ctx.client("lambda").delete_event_source_mapping(UUID=observed.state["UUID"])
        except ClientError as e:
            if not is_not_found(e):
                raise
