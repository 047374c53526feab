"""DynamoDB table `Orders`: key `orderId` (S), on-demand billing."""

from __future__ import annotations

from botocore.exceptions import ClientError

from orderflow.aws import is_not_found
from orderflow.errors import OrderflowError
from orderflow.provision.base import Context, Observed, Resource, changed
from orderflow.stack import tag_dict, tag_list

KEY_SCHEMA = [{"AttributeName": "orderId", "KeyType": "HASH"}]
KEY_ATTRIBUTES = [{"AttributeName": "orderId", "AttributeType": "S"}]
BILLING_MODE = "PAY_PER_REQUEST"


class Table(Resource):
    key = "table"
    kind = "DynamoDB table"

    def name(self, ctx: Context) -> str:
        return ctx.config.table_name

    def arn(self, ctx: Context) -> str:
        return ctx.arns.table(self.name(ctx))

    def read(self, ctx: Context) -> Observed | None:
        ddb = ctx.client("dynamodb")
        try:
            table = ddb.describe_table(TableName=self.name(ctx))["Table"]
        except ClientError as e:
            if is_not_found(e):
                return None
            raise
        tags = ddb.list_tags_of_resource(ResourceArn=table["TableArn"]).get("Tags", [])
        return Observed(
            state={
                "status": table.get("TableStatus"),
                "key_schema": table.get("KeySchema"),
                "billing_mode": table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED"),
                "item_count": table.get("ItemCount"),
            },
            tags=tag_dict(tags),
        )

    def diff(self, ctx: Context, observed: Observed) -> list[str]:
        if observed.state["key_schema"] != KEY_SCHEMA:
            raise OrderflowError(
                f"table {self.name(ctx)!r} has key schema {observed.state['key_schema']}, not orderId (HASH); "
                "a key cannot be changed in place. Delete the table (orderflow down) and run up again"
            )
        return changed("billing mode", observed.state["billing_mode"], BILLING_MODE)

    def create(self, ctx: Context) -> None:
        ddb = ctx.client("dynamodb")
        ddb.create_table(
            TableName=self.name(ctx),
            KeySchema=KEY_SCHEMA,
            AttributeDefinitions=KEY_ATTRIBUTES,
            BillingMode=BILLING_MODE,
            Tags=tag_list(ctx.config.tags),
        )
        self._wait(ctx, "table_exists")

    def update(self, ctx: Context, observed: Observed) -> None:
        ctx.client("dynamodb").update_table(TableName=self.name(ctx), BillingMode=BILLING_MODE)
        self._wait(ctx, "table_exists")

    def delete(self, ctx: Context, observed: Observed) -> None:
        try:
            ctx.client("dynamodb").delete_table(TableName=self.name(ctx))
        except ClientError as e:
            if not is_not_found(e):
                raise
        self._wait(ctx, "table_not_exists")

    def _wait(self, ctx: Context, waiter: str) -> None:
        ctx.client("dynamodb").get_waiter(waiter).wait(
            TableName=self.name(ctx), WaiterConfig={"Delay": ctx.waiter_delay, "MaxAttempts": 300}
        )
