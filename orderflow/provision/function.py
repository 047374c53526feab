"""Lambda function `ProcessOrderFunction`: the handler zip from `orderflow/lambda_code/`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from orderflow.aws import error_code, is_not_found
from orderflow.provision.base import Context, Observed, Resource, changed

HANDLER = "index.lambda_handler"
ROLE_NOT_ASSUMABLE = "cannot be assumed by Lambda"
# IAM is eventually consistent: a new role can be refused by Lambda for ~5-20 s. Terraform waits up to 2 minutes.
ROLE_PROPAGATION_LIMIT_SECONDS = 120.0

T = TypeVar("T")


def retry_while_role_propagates(ctx: Context, call: Callable[[], T]) -> T:
    """Run `call`, retrying with bounded exponential backoff while Lambda cannot assume the new role yet."""
    deadline = ctx.clock() + ROLE_PROPAGATION_LIMIT_SECONDS
    delay = 1.0
    while True:
        try:
            return call()
        except ClientError as e:
            message = e.response.get("Error", {}).get("Message", "")
            retryable = error_code(e) == "InvalidParameterValueException" and ROLE_NOT_ASSUMABLE in message
            if not retryable or ctx.clock() + delay > deadline:
                raise
        ctx.sleep(delay)
        delay = min(delay * 2, 10.0)


class Function(Resource):
    key = "function"
    kind = "Lambda function"

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
                "LastUpdateStatus": config.get("LastUpdateStatus"),
            },
            tags=response.get("Tags", {}),
        )

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

    def diff(self, ctx: Context, observed: Observed) -> list[str]:
        return self._code_diff(ctx, observed) + self._config_diff(ctx, observed)

    @staticmethod
    def _package(ctx: Context):
        if ctx.package is None:
            raise RuntimeError("the Lambda package must be built before planning the function")
        return ctx.package

    def create(self, ctx: Context) -> None:
        lam = ctx.client("lambda")
        retry_while_role_propagates(
            ctx,
            lambda: lam.create_function(
                FunctionName=self.name(ctx),
                Code={"ZipFile": self._package(ctx).zip_bytes},
                Architectures=[ctx.settings.architecture],
                Tags=ctx.config.tags,
                Description=f"orderflow stack {ctx.config.name}: writes orders from SQS to DynamoDB",
                **self.desired_configuration(ctx),
            ),
        )
        self._wait(ctx, "function_active_v2")

    def update(self, ctx: Context, observed: Observed) -> None:
        lam = ctx.client("lambda")
        if self._code_diff(ctx, observed):
            lam.update_function_code(
                FunctionName=self.name(ctx),
                ZipFile=self._package(ctx).zip_bytes,
                Architectures=[ctx.settings.architecture],
            )
            self._wait(ctx, "function_updated_v2")
        if self._config_diff(ctx, observed):
            retry_while_role_propagates(
                ctx,
                lambda: lam.update_function_configuration(
                    FunctionName=self.name(ctx), **self.desired_configuration(ctx)
                ),
            )
            self._wait(ctx, "function_updated_v2")

    def delete(self, ctx: Context, observed: Observed) -> None:
        try:
            ctx.client("lambda").delete_function(FunctionName=self.name(ctx))
        except ClientError as e:
            if not is_not_found(e):
                raise

    def _wait(self, ctx: Context, waiter: str) -> None:
        ctx.client("lambda").get_waiter(waiter).wait(
            FunctionName=self.name(ctx), WaiterConfig={"Delay": ctx.waiter_delay, "MaxAttempts": 300}
        )
