"""Lambda function `ProcessOrderFunction`: the handler zip from `orderflow/lambda_code/`."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from orderflow.aws import is_access_denied, or_none
from orderflow.provision.base import Context, Observed, Resource, changed
from orderflow.provision.grants import OBSERVERS, Grant, grant
from orderflow.provision.ops import Call, Operation, Transient, Wait
from orderflow.provision.package import LambdaPackage

HANDLER = "index.lambda_handler"
# Lambda refuses a role IAM has not propagated yet (InvalidParameterValueException, "The role defined for the
# function cannot be assumed by Lambda."), and any change while the function is still Pending or being updated
# (ResourceConflictException): both pass with time.
ROLE_NOT_ASSUMABLE = Transient("InvalidParameterValueException", ("cannot be assumed by Lambda",))
BUSY = Transient("ResourceConflictException")
TRANSIENT = (ROLE_NOT_ASSUMABLE, BUSY)
_WAITED = {
    "function_active_v2": ("Configuration.State", ("Pending",)),
    "function_updated_v2": ("Configuration.LastUpdateStatus", ("InProgress",)),
}


class Function(Resource):
    key = "function"
    kind = "Lambda function"
    depends_on = ("role", "log_group")

    def grants(self, ctx: Context) -> list[Grant]:
        function = self.arn(ctx)
        writes = ("lambda:CreateFunction", "lambda:TagResource", "lambda:UpdateFunctionCode",
                  "lambda:UpdateFunctionConfiguration")  # fmt: skip
        return [
            grant(OBSERVERS | {"verify"}, ("lambda:GetFunction", "lambda:ListTags"), function),
            grant({"up"}, (*writes, "lambda:GetFunctionConfiguration"), function),
            grant({"down"}, ("lambda:DeleteFunction",), function),
        ]

    def name(self, ctx: Context) -> str:
        return ctx.config.function_name

    def tag_call(self, ctx: Context) -> Call | None:
        return Call("lambda", "TagResource", {"Resource": self.arn(ctx), "Tags": ctx.config.tags}, self.name(ctx))

    def arn(self, ctx: Context) -> str:
        return ctx.arns.function(self.name(ctx))

    def desired_configuration(self, ctx: Context) -> dict[str, Any]:
        s = ctx.settings
        return {
            "Runtime": s.runtime,
            "Handler": HANDLER,
            "Role": ctx.arns.role(ctx.config.role_name),
            "Timeout": s.function_timeout,
            "MemorySize": s.memory_size,
            "Environment": {"Variables": {"TABLE_NAME": ctx.config.table_name}},
        }

    def read(self, ctx: Context) -> Observed | None:
        response = or_none(lambda: ctx.client("lambda").get_function(FunctionName=self.name(ctx)))
        if response is None:
            return None
        config = response["Configuration"]
        tags, unreadable = self._tags(ctx, response)
        return Observed(
            state={
                "Runtime": config.get("Runtime"),
                "Handler": config.get("Handler"),
                "Role": config.get("Role"),
                "Timeout": config.get("Timeout"),
                "MemorySize": config.get("MemorySize"),
                "Environment": {"Variables": config.get("Environment", {}).get("Variables", {})},
                "Architectures": config.get("Architectures", ["x86_64"]),
                "CodeSha256": config.get("CodeSha256"),
                "State": config.get("State"),
                "StateReason": config.get("StateReason"),
                "LastUpdateStatus": config.get("LastUpdateStatus"),
                "LastUpdateStatusReason": config.get("LastUpdateStatusReason"),
                # Not a setting orderflow makes (it is the user's, or their platform team's): read for advice only.
                "ReservedConcurrentExecutions": (response.get("Concurrency") or {}).get("ReservedConcurrentExecutions"),
            },
            tags=tags,
            tags_unreadable=unreadable,
        )

    def _tags(self, ctx: Context, response: dict[str, Any]) -> tuple[dict[str, str] | None, str | None]:
        """GetFunction returns Tags only to a caller allowed lambda:ListTags (else a TagsError): then ask ListTags,
        and if that is refused too, say ownership cannot be read — never that the function is not ours."""
        if "Tags" in response or "TagsError" not in response:
            return response.get("Tags", {}), None
        try:
            return ctx.client("lambda").list_tags(Resource=self.arn(ctx)).get("Tags", {}), None
        except ClientError as e:
            if not is_access_denied(e):
                raise
            return None, f"lambda:ListTags is denied ({response['TagsError'].get('Message', 'TagsError')})"

    def deployed_settings(self, observed: Observed) -> dict[str, Any]:
        state = observed.state
        return {
            "runtime": state["Runtime"],
            "architecture": (state["Architectures"] or [None])[0],
            "function_timeout": state["Timeout"],
            "memory_size": state["MemorySize"],
        }

    def status_detail(self, observed: Observed) -> str | None:
        state = observed.state
        if state.get("State") == "Failed":
            return f"Failed: {state.get('StateReason')}"
        if state.get("LastUpdateStatus") == "Failed":
            return f"last update Failed: {state.get('LastUpdateStatusReason')}"
        if state.get("State") not in (None, "Active"):
            return str(state.get("State"))
        return "update in progress" if state.get("LastUpdateStatus") == "InProgress" else None

    def _code_diff(self, ctx: Context, observed: Observed) -> list[str]:
        lines = changed("architecture", observed.state["Architectures"], [ctx.settings.architecture])
        if observed.state["CodeSha256"] != self._package(ctx).code_sha256:
            lines.append("handler code changed (CodeSha256 differs)")
        return lines

    def _config_diff(self, ctx: Context, observed: Observed) -> list[str]:
        return [
            line
            for key, value in self.desired_configuration(ctx).items()
            for line in changed(key, observed.state.get(key), value)
        ]

    @staticmethod
    def _package(ctx: Context) -> LambdaPackage:
        if ctx.package is None:
            raise RuntimeError("the Lambda package must be built before planning the function")
        return ctx.package

    def _wait(self, ctx: Context, waiter: str, what: str, reasons: tuple[str, ...] = ()) -> Wait:
        target = f"function {self.name(ctx)}"
        # Lambda function states: on its way to Active a function is Pending, an update is InProgress. Inactive
        # (idle) or Failed met while waiting will not pass by waiting: the wait fails at once, naming it.
        path, passing = _WAITED[waiter]
        return Wait("lambda", target, what, waiter, params={"FunctionName": self.name(ctx)}, reasons=reasons,
                    state_path=path, passing=passing)  # fmt: skip

    def create_operations(self, ctx: Context, vanishing: Observed | None) -> list[Operation]:
        params = {
            "FunctionName": self.name(ctx),
            "Code": {"ZipFile": self._package(ctx).zip_bytes},
            "Architectures": [ctx.settings.architecture],
            "Tags": ctx.config.tags,
            "Description": f"orderflow stack {ctx.config.name}: writes orders from SQS to DynamoDB",
            **self.desired_configuration(ctx),
        }
        create = Call(
            "lambda", "CreateFunction", params, self.name(ctx), retry=(ROLE_NOT_ASSUMABLE,), exists=(BUSY.code,)
        )
        return [create, self._wait(ctx, "function_active_v2", "to be Active")]

    def update_operations(self, ctx: Context, observed: Observed) -> list[Operation]:
        detail = self.status_detail(observed)
        failed = detail is not None and "Failed" in detail
        code, config = self._code_diff(ctx, observed), self._config_diff(ctx, observed)
        if detail is None and not code and not config:
            return []
        inactive = observed.state.get("State") == "Inactive"
        if inactive and not code and not config:
            return []  # idle, and as it should be: the next invocation (or update) makes Lambda reactivate it
        operations: list[Operation] = []
        if not failed:
            # Lambda refuses a change while the function is Pending or being updated. An Inactive function is
            # never Active by waiting: it is updated as it is, and the update reactivates it.
            why = (f"function is {detail}: wait until it is ready",) if detail and not inactive else ()
            active = [] if inactive else [self._wait(ctx, "function_active_v2", "to be Active", why)]
            operations += [*active, self._wait(ctx, "function_updated_v2", "to finish its update", why)]
        if code:
            params = {
                "FunctionName": self.name(ctx),
                "ZipFile": self._package(ctx).zip_bytes,
                "Architectures": [ctx.settings.architecture],
            }
            operations += [
                Call("lambda", "UpdateFunctionCode", params, self.name(ctx), tuple(code), retry=(BUSY,)),
                self._wait(ctx, "function_updated_v2", "to finish its code update"),
            ]
        if config or failed:
            # Updating a Failed function makes Lambda create its resources again (Lambda function states).
            why = tuple(config) + ((f"function is {detail}: it will be updated to recover",) if failed else ())
            params = {"FunctionName": self.name(ctx), **self.desired_configuration(ctx)}
            operations += [
                Call("lambda", "UpdateFunctionConfiguration", params, self.name(ctx), why, retry=TRANSIENT),
                self._wait(ctx, "function_updated_v2", "to finish its configuration update"),
                self._wait(ctx, "function_active_v2", "to be Active"),
            ]
        elif inactive:
            operations.append(self._wait(ctx, "function_active_v2", "to be Active again"))
        return operations

    def delete_operations(self, ctx: Context, observed: Observed) -> list[Operation]:
        return [Call("lambda", "DeleteFunction", {"FunctionName": self.name(ctx)}, self.name(ctx), gone_ok=True)]

    def explain(self, ctx: Context, wait: Wait) -> str | None:
        config = ctx.client("lambda").get_function_configuration(FunctionName=self.name(ctx))
        if config.get("LastUpdateStatus") == "Failed":
            reason, code = config.get("LastUpdateStatusReason"), config.get("LastUpdateStatusReasonCode")
            return f"its last update Failed: {reason} ({code})"
        return f"it is {config.get('State')}: {config.get('StateReason')} ({config.get('StateReasonCode')})"
