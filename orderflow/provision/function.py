"""Lambda function `ProcessOrderFunction`: the handler zip from `orderflow/lambda_code/`."""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from orderflow.aws import is_access_denied, is_not_found
from orderflow.provision.base import Context, Observed, Resource, changed
from orderflow.provision.waits import any_of, refused_with, retry_while, wait_with

HANDLER = "index.lambda_handler"
# Lambda refuses a role IAM has not propagated yet (InvalidParameterValueException, "The role defined for the
# function cannot be assumed by Lambda."), and any change while the function is still Pending or being updated
# (ResourceConflictException): both pass with time.
ROLE_NOT_ASSUMABLE = refused_with("InvalidParameterValueException", "cannot be assumed by Lambda")
BUSY = refused_with("ResourceConflictException")
TRANSIENT = any_of(ROLE_NOT_ASSUMABLE, BUSY)


class Function(Resource):
    key = "function"
    kind = "Lambda function"
    depends_on = ("role", "log_group")

    def name(self, ctx: Context) -> str:
        return ctx.config.function_name

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
        try:
            response = ctx.client("lambda").get_function(FunctionName=self.name(ctx))
        except ClientError as e:
            if is_not_found(e):
                return None
            raise
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

    def _state_diff(self, observed: Observed) -> list[str]:
        detail = self.status_detail(observed)
        if detail is None:
            return []
        if "Failed" in detail:
            return [f"function is {detail}: it will be updated to recover"]
        return [f"function is {detail}: wait until it is ready"]

    def diff(self, ctx: Context, observed: Observed) -> list[str]:
        return self._state_diff(observed) + self._code_diff(ctx, observed) + self._config_diff(ctx, observed)

    @staticmethod
    def _package(ctx: Context):
        if ctx.package is None:
            raise RuntimeError("the Lambda package must be built before planning the function")
        return ctx.package

    def create(self, ctx: Context) -> None:
        lam = ctx.client("lambda")
        retry_while(
            ctx,
            self.key,
            lambda: lam.create_function(
                FunctionName=self.name(ctx),
                Code={"ZipFile": self._package(ctx).zip_bytes},
                Architectures=[ctx.settings.architecture],
                Tags=ctx.config.tags,
                Description=f"orderflow stack {ctx.config.name}: writes orders from SQS to DynamoDB",
                **self.desired_configuration(ctx),
            ),
            ROLE_NOT_ASSUMABLE,
        )
        self._wait(ctx, "function_active_v2", "to be Active")

    def update(self, ctx: Context, observed: Observed) -> None:
        lam = ctx.client("lambda")
        failed = observed.state.get("State") == "Failed" or observed.state.get("LastUpdateStatus") == "Failed"
        if not failed:
            self._wait(ctx, "function_active_v2", "to be Active")
            self._wait(ctx, "function_updated_v2", "to finish its update")
        if self._code_diff(ctx, observed):
            retry_while(
                ctx,
                self.key,
                lambda: lam.update_function_code(
                    FunctionName=self.name(ctx),
                    ZipFile=self._package(ctx).zip_bytes,
                    Architectures=[ctx.settings.architecture],
                ),
                BUSY,
            )
            self._wait(ctx, "function_updated_v2", "to finish its code update")
        if self._config_diff(ctx, observed) or failed:
            # Updating a Failed function makes Lambda create its resources again (Lambda function states).
            retry_while(
                ctx,
                self.key,
                lambda: lam.update_function_configuration(
                    FunctionName=self.name(ctx), **self.desired_configuration(ctx)
                ),
                TRANSIENT,
            )
            self._wait(ctx, "function_updated_v2", "to finish its configuration update")
            self._wait(ctx, "function_active_v2", "to be Active")

    def delete(self, ctx: Context, observed: Observed) -> None:
        try:
            ctx.client("lambda").delete_function(FunctionName=self.name(ctx))
        except ClientError as e:
            if not is_not_found(e):
                raise

    def _wait(self, ctx: Context, waiter: str, what: str) -> None:
        wait_with(
            ctx,
            self.key,
            f"function {self.name(ctx)} {what}",
            ctx.client("lambda"),
            waiter,
            explain=lambda: self._why_not_ready(ctx),
            FunctionName=self.name(ctx),
        )

    def _why_not_ready(self, ctx: Context) -> str:
        config = ctx.client("lambda").get_function_configuration(FunctionName=self.name(ctx))
        if config.get("LastUpdateStatus") == "Failed":
            reason, code = config.get("LastUpdateStatusReason"), config.get("LastUpdateStatusReasonCode")
            return f"its last update Failed: {reason} ({code})"
        return f"it is {config.get('State')}: {config.get('StateReason')} ({config.get('StateReasonCode')})"
