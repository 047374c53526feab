"""Event source mapping OrderQueue -> ProcessOrderFunction, with partial batch failure reporting."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from orderflow.aws import is_not_found
from orderflow.errors import OrderflowError
from orderflow.provision.base import Context, Observed, Resource, changed
from orderflow.provision.waits import any_of, poll_until, refused_with, retry_while

RESPONSE_TYPES = ["ReportBatchItemFailures"]
# Lambda API Reference, EventSourceMappingConfiguration.State: the mapping polls only once Enabled; it cannot be
# updated or deleted while it is between states.
SETTLED = ("Enabled", "Disabled")
# While the role's new policies propagate, Lambda refuses the mapping ("The provided execution role does not have
# permissions to call ReceiveMessage on SQS"); while an older mapping of the same queue and function is still
# Deleting, it refuses a new one (ResourceConflictException). Both pass with time.
MAPPING_TRANSIENT = any_of(
    refused_with("InvalidParameterValueException", "execution role does not have permissions", "cannot be assumed"),
    refused_with("ResourceConflictException"),
)
IN_USE = refused_with("ResourceInUseException")


def find_mapping(ctx: Context) -> dict[str, Any] | None:
    """The mapping from this stack's queue to its function, if any; a live one before one that is Deleting."""
    paginator = ctx.client("lambda").get_paginator("list_event_source_mappings")
    found = []
    try:
        for page in paginator.paginate(
            EventSourceArn=ctx.arns.queue(ctx.config.queue_name), FunctionName=ctx.config.function_name
        ):
            found += page.get("EventSourceMappings", [])
    except ClientError as e:
        if is_not_found(e):
            return None
        raise
    found.sort(key=lambda m: m.get("State") == "Deleting")
    return found[0] if found else None


def mapping_state(ctx: Context, uuid: str) -> str | None:
    """The mapping's State, or None once it is gone."""
    try:
        return ctx.client("lambda").get_event_source_mapping(UUID=uuid).get("State")
    except ClientError as e:
        if is_not_found(e):
            return None
        raise


class Trigger(Resource):
    key = "trigger"
    kind = "SQS trigger"
    owned_with = "function"
    depends_on = ("function", "queue", "role")

    def name(self, ctx: Context) -> str:
        return f"{ctx.config.queue_name} -> {ctx.config.function_name}"

    def status_detail(self, observed: Observed) -> str | None:
        return observed.state.get("State")

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

    def deployed_settings(self, observed: Observed) -> dict[str, Any]:
        return {
            "batch_size": observed.state["BatchSize"],
            "batching_window": observed.state["MaximumBatchingWindowInSeconds"],
        }

    def vanishing(self, observed: Observed) -> bool:
        return observed.state["State"] == "Deleting"

    def _settings_diff(self, ctx: Context, observed: Observed) -> list[str]:
        return [
            line for key, value in self.desired(ctx).items() for line in changed(key, observed.state.get(key), value)
        ]

    def diff(self, ctx: Context, observed: Observed) -> list[str]:
        state = observed.state["State"]
        waiting = [] if state in SETTLED else [f"mapping is {state}: wait until it is Enabled"]
        return waiting + self._settings_diff(ctx, observed)

    def create(self, ctx: Context) -> None:
        created = retry_while(
            ctx,
            self.key,
            lambda: ctx.client("lambda").create_event_source_mapping(
                EventSourceArn=ctx.arns.queue(ctx.config.queue_name),
                FunctionName=ctx.config.function_name,
                **self.desired(ctx),
            ),
            MAPPING_TRANSIENT,
        )
        self._wait_settled(ctx, created["UUID"])

    def update(self, ctx: Context, observed: Observed) -> None:
        uuid = observed.state["UUID"]
        self._wait_settled(ctx, uuid)
        if self._settings_diff(ctx, observed):
            retry_while(
                ctx,
                self.key,
                lambda: ctx.client("lambda").update_event_source_mapping(UUID=uuid, **self.desired(ctx)),
                IN_USE,
            )
            self._wait_settled(ctx, uuid)

    def delete(self, ctx: Context, observed: Observed) -> None:
        uuid = observed.state["UUID"]
        if observed.state["State"] != "Deleting":
            self._wait_settled(ctx, uuid)

            def delete() -> None:
                try:
                    ctx.client("lambda").delete_event_source_mapping(UUID=uuid)
                except ClientError as e:
                    if not is_not_found(e):
                        raise

            retry_while(ctx, self.key, delete, IN_USE)
        # Deleting is asynchronous: the mapping is only gone (and its name free for the next `up`) later.
        poll_until(
            ctx,
            self.key,
            f"the trigger {uuid} to be deleted",
            lambda: mapping_state(ctx, uuid),
            lambda state: state is None,
        )

    def _wait_settled(self, ctx: Context, uuid: str) -> None:
        state = poll_until(
            ctx,
            self.key,
            f"the trigger {uuid} to be Enabled",
            lambda: mapping_state(ctx, uuid),
            lambda state: state in (*SETTLED, None),
        )
        if state is None:
            raise OrderflowError(f"The trigger {uuid} disappeared while orderflow waited for it: run `orderflow up`")
