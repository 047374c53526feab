"""Event source mapping OrderQueue -> ProcessOrderFunction, with partial batch failure reporting."""

from __future__ import annotations

from typing import Any

from orderflow.aws import or_none
from orderflow.errors import AwsError, NotFoundError
from orderflow.provision.base import Context, Observed, Resource, changed
from orderflow.provision.grants import OBSERVERS, Grant, grant
from orderflow.provision.ops import Call, Operation, Ref, Transient, Wait

RESPONSE_TYPES = ["ReportBatchItemFailures"]
# Lambda API Reference, EventSourceMappingConfiguration.State: the mapping polls only once Enabled; it cannot be
# updated or deleted while it is between states.
SETTLED = ("Enabled", "Disabled")
# The states a mapping passes through on its way to Enabled or Disabled: any other met while waiting (Disabled when
# Enabled was asked, Deleting) will not pass by waiting, and the wait fails at once naming it.
PASSING = ("Creating", "Enabling", "Updating", "Disabling")
# While the role's new policies propagate, Lambda refuses the mapping ("The provided execution role does not have
# permissions to call ReceiveMessage on SQS"); while an older mapping of the same queue and function is still
# Deleting, it refuses a new one (ResourceConflictException). Both pass with time.
MAPPING_TRANSIENT = (
    Transient("InvalidParameterValueException", ("execution role does not have permissions", "cannot be assumed")),
    Transient("ResourceConflictException"),
)
IN_USE = (Transient("ResourceInUseException"),)


def find_mapping(ctx: Context) -> dict[str, Any] | None:
    """The mapping from this stack's queue to its function, if any; a live one before one that is Deleting."""
    paginator = ctx.client("lambda").get_paginator("list_event_source_mappings")
    pages = or_none(
        lambda: list(
            paginator.paginate(
                EventSourceArn=ctx.arns.queue(ctx.config.queue_name), FunctionName=ctx.config.function_name
            )
        )
    )
    found = [m for page in pages or [] for m in page.get("EventSourceMappings", [])]
    found.sort(key=lambda m: m.get("State") == "Deleting")
    return found[0] if found else None


def mapping_state(ctx: Context, uuid: str) -> tuple[str, str] | None:
    """The mapping's State and StateTransitionReason, or None once it is gone."""
    mapping = or_none(lambda: ctx.client("lambda").get_event_source_mapping(UUID=uuid))
    return None if mapping is None else (str(mapping.get("State")), str(mapping.get("StateTransitionReason") or ""))


class Trigger(Resource):
    key = "trigger"
    kind = "SQS trigger"
    owned_with = "function"
    depends_on = ("function", "queue", "role")

    def grants(self, ctx: Context) -> list[Grant]:
        # A mapping's ARN is known only once it exists: its calls are allowed for mappings of this function alone
        # (lambda:FunctionArn), and ListEventSourceMappings has no resource type.
        of_ours = {"ArnLike": {"lambda:FunctionArn": self.arn(ctx)}}
        # …IfExists: once a mapping is deleted it has no function, and the wait for its deletion must hear "not
        # found", not "access denied"; while it exists, its function must be ours.
        existing = {"ArnLikeIfExists": {"lambda:FunctionArn": self.arn(ctx)}}
        mappings = f"arn:{ctx.arns.partition}:lambda:{ctx.arns.region}:{ctx.arns.account}:event-source-mapping:*"
        return [
            grant(OBSERVERS | {"verify"}, ("lambda:ListEventSourceMappings",), "*"),
            grant({"up"}, ("lambda:CreateEventSourceMapping",), "*", condition=of_ours),
            grant(
                {"up"},
                ("lambda:GetEventSourceMapping", "lambda:UpdateEventSourceMapping"),
                mappings,
                condition=existing,
            ),
            grant(
                {"down"},
                ("lambda:GetEventSourceMapping", "lambda:DeleteEventSourceMapping"),
                mappings,
                condition=existing,
            ),
        ]

    def name(self, ctx: Context) -> str:
        return f"{ctx.config.queue_name} -> {ctx.config.function_name}"

    def status_detail(self, observed: Observed) -> str | None:
        return observed.state.get("State")

    def arn(self, ctx: Context) -> str:
        return ctx.arns.function(ctx.config.function_name)

    def observed_arn(self, ctx: Context, observed: Observed) -> str:
        """The mapping's own ARN (Lambda's form: `…:event-source-mapping:UUID`)."""
        arn = ctx.arns.function(ctx.config.function_name)
        return arn.rsplit(":function:", 1)[0] + f":event-source-mapping:{observed.state['UUID']}"

    def desired(self, ctx: Context) -> dict[str, Any]:
        maximum = ctx.settings.max_concurrency
        return {
            "BatchSize": ctx.settings.batch_size,
            "MaximumBatchingWindowInSeconds": ctx.settings.batching_window,
            "FunctionResponseTypes": RESPONSE_TYPES,
            "Enabled": True,
            # An empty ScalingConfig removes the maximum (Lambda API Reference, ScalingConfig).
            "ScalingConfig": {"MaximumConcurrency": maximum} if maximum else {},
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
                "ScalingConfig": mapping.get("ScalingConfig") or {},
                "Enabled": mapping.get("State") in ("Enabled", "Enabling", "Creating", "Updating"),
                "State": mapping.get("State"),
            }
        )

    def deployed_settings(self, observed: Observed) -> dict[str, Any]:
        return {
            "batch_size": observed.state["BatchSize"],
            "batching_window": observed.state["MaximumBatchingWindowInSeconds"],
            "max_concurrency": observed.state["ScalingConfig"].get("MaximumConcurrency", 0),
        }

    def vanishing(self, observed: Observed) -> bool:
        return observed.state["State"] == "Deleting"

    def _settings_diff(self, ctx: Context, observed: Observed) -> list[str]:
        return [
            line for key, value in self.desired(ctx).items() for line in changed(key, observed.state.get(key), value)
        ]

    def _settled(self, ctx: Context, uuid: str | Ref, reasons: tuple[str, ...] = (), enabled: bool = False) -> Wait:
        """Until the mapping is between states no more; `enabled`: until it is Enabled (what `up` asked for)."""
        return Wait(
            "lambda",
            f"trigger {self.name(ctx)}",
            "to be Enabled" if enabled else "to settle (Enabled or Disabled)",
            condition="enabled" if enabled else "settled",
            params={"UUID": uuid},
            reasons=reasons,
        )

    def create_operations(self, ctx: Context, vanishing: Observed | None) -> list[Operation]:
        desired = self.desired(ctx)
        if not desired["ScalingConfig"]:
            del desired["ScalingConfig"]  # nothing to remove on a new mapping
        params = {
            "EventSourceArn": ctx.arns.queue(ctx.config.queue_name),
            "FunctionName": ctx.config.function_name,
            **desired,
        }
        create = Call(
            "lambda",
            "CreateEventSourceMapping",
            params,
            self.name(ctx),
            retry=MAPPING_TRANSIENT,
            store=("uuid", "UUID"),
            # the same mapping made meanwhile; one still Deleting reads as none, and the create is retried
            exists=("ResourceConflictException",),
        )
        return [create, self._settled(ctx, Ref("uuid"), enabled=True)]

    def update_operations(self, ctx: Context, observed: Observed) -> list[Operation]:
        uuid, state = observed.state["UUID"], observed.state["State"]
        # a mapping between states can be neither updated nor deleted
        operations: list[Operation] = (
            [] if state in SETTLED else [self._settled(ctx, uuid, (f"mapping is {state}: wait until it is Enabled",))]
        )
        reasons = self._settings_diff(ctx, observed)
        if reasons:
            params = {"UUID": uuid, **self.desired(ctx)}
            update = Call("lambda", "UpdateEventSourceMapping", params, self.name(ctx), tuple(reasons), retry=IN_USE)
            operations += [update, self._settled(ctx, uuid, enabled=True)]
        return operations

    def delete_operations(self, ctx: Context, observed: Observed) -> list[Operation]:
        uuid = observed.state["UUID"]
        ready = [] if observed.state["State"] in SETTLED else [self._settled(ctx, uuid)]
        delete = Call("lambda", "DeleteEventSourceMapping", {"UUID": uuid}, self.name(ctx), retry=IN_USE, gone_ok=True)
        # Deleting is asynchronous: the mapping is only gone (and its name free for the next `up`) later.
        gone = Wait("lambda", f"trigger {self.name(ctx)}", "to be deleted", condition="gone", params={"UUID": uuid})
        return [*ready, delete, gone]

    def check(self, ctx: Context, wait: Wait, params: dict[str, Any]) -> tuple[bool, str]:
        found = mapping_state(ctx, params["UUID"])
        if wait.condition == "gone":
            return found is None, str(found[0] if found else None)
        if found is None:
            raise NotFoundError(
                f"The trigger {params['UUID']} disappeared while orderflow waited for it: run `orderflow up`"
            )
        state, reason = found
        wanted = ("Enabled",) if wait.condition == "enabled" else SETTLED
        if state not in wanted and state not in PASSING:
            because = f": {reason}" if reason else ""
            raise AwsError(f"trigger {self.name(ctx)} {wait.what} did not happen: it is {state}{because}")
        return state in wanted, state
