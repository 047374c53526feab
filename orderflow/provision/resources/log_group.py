"""CloudWatch log group `/aws/lambda/ProcessOrderFunction`, created by `up` so that `down` owns and deletes it."""

from __future__ import annotations

from orderflow.provision.base import Context, Observed, Resource, changed
from orderflow.provision.grants import OBSERVERS, Grant, grant
from orderflow.provision.ops import Call, Operation


class LogGroup(Resource):
    key = "log_group"
    kind = "CloudWatch log group"

    def grants(self, ctx: Context) -> list[Grant]:
        # Log group actions are checked on the group's ARN, and policies usually name it with ":*" (any of its
        # streams): both are granted. DescribeLogGroups is checked on every group of the account.
        group = (self.arn(ctx), f"{self.arn(ctx)}:*")
        every_group = ctx.arns.log_group("*")
        return [
            grant(OBSERVERS, ("logs:DescribeLogGroups",), every_group),
            grant(OBSERVERS, ("logs:ListTagsForResource",), *group),
            grant({"up"}, ("logs:CreateLogGroup", "logs:TagResource", "logs:PutRetentionPolicy"), *group),
            grant({"down"}, ("logs:DeleteLogGroup",), *group),
            grant({"verify", "watch", "trace", "logs"}, ("logs:FilterLogEvents",), *group),
        ]

    def name(self, ctx: Context) -> str:
        return ctx.config.log_group_name

    def tag_call(self, ctx: Context) -> Call | None:
        params = {"resourceArn": ctx.arns.log_group(self.name(ctx)), "tags": ctx.config.tags}
        return Call("logs", "TagResource", params, self.name(ctx))

    def arn(self, ctx: Context) -> str:
        return ctx.arns.log_group(self.name(ctx))

    def read(self, ctx: Context) -> Observed | None:
        logs = ctx.client("logs")
        groups = logs.describe_log_groups(logGroupNamePrefix=self.name(ctx)).get("logGroups", [])
        group = next((g for g in groups if g["logGroupName"] == self.name(ctx)), None)
        if group is None:
            return None
        tags = logs.list_tags_for_resource(resourceArn=self.arn(ctx)).get("tags", {})
        return Observed(
            state={"retention_days": group.get("retentionInDays"), "stored_bytes": group.get("storedBytes")},
            tags=tags,
        )

    def _retention(self, ctx: Context, reasons: tuple[str, ...] = ()) -> Call:
        params = {"logGroupName": self.name(ctx), "retentionInDays": ctx.settings.log_retention_days}
        return Call("logs", "PutRetentionPolicy", params, self.name(ctx), reasons)

    def create_operations(self, ctx: Context, vanishing: Observed | None) -> list[Operation]:
        params = {"logGroupName": self.name(ctx), "tags": ctx.config.tags}
        create = Call("logs", "CreateLogGroup", params, self.name(ctx), exists=("ResourceAlreadyExistsException",))
        return [create, self._retention(ctx)]

    def update_operations(self, ctx: Context, observed: Observed) -> list[Operation]:
        reasons = changed("retention days", observed.state["retention_days"], ctx.settings.log_retention_days)
        return [self._retention(ctx, tuple(reasons))] if reasons else []

    def delete_operations(self, ctx: Context, observed: Observed) -> list[Operation]:
        return [Call("logs", "DeleteLogGroup", {"logGroupName": self.name(ctx)}, self.name(ctx), gone_ok=True)]
