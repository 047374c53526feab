"""CloudWatch log group `/aws/lambda/ProcessOrderFunction`, created by `up` so that `down` owns and deletes it."""

from __future__ import annotations

from botocore.exceptions import ClientError

from orderflow.aws import is_not_found
from orderflow.provision.base import Context, Observed, Resource, changed


class LogGroup(Resource):
    key = "log_group"
    kind = "CloudWatch log group"

    def name(self, ctx: Context) -> str:
        return ctx.config.log_group_name

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

    def diff(self, ctx: Context, observed: Observed) -> list[str]:
        return changed("retention days", observed.state["retention_days"], ctx.settings.log_retention_days)

    def create(self, ctx: Context) -> None:
        ctx.client("logs").create_log_group(logGroupName=self.name(ctx), tags=ctx.config.tags)
        self.update(ctx, Observed())

    def update(self, ctx: Context, observed: Observed) -> None:
        ctx.client("logs").put_retention_policy(
            logGroupName=self.name(ctx), retentionInDays=ctx.settings.log_retention_days
        )

    def delete(self, ctx: Context, observed: Observed) -> None:
        try:
            ctx.client("logs").delete_log_group(logGroupName=self.name(ctx))
        except ClientError as e:
            if not is_not_found(e):
                raise
