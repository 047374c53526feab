"""DynamoDB table `Orders`: key `orderId` (S), on-demand billing."""

from __future__ import annotations

from botocore.exceptions import ClientError

from orderflow.aws import error_code, is_not_found
from orderflow.errors import OrderflowError
from orderflow.provision.base import Context, Observed, Resource, changed
from orderflow.provision.waits import wait_with
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

    def vanishing(self, observed: Observed) -> bool:
        return observed.state["status"] == "DELETING"

    def diff(self, ctx: Context, observed: Observed) -> list[str]:
        status = (
            [] if observed.state["status"] == "ACTIVE" else [f"table is {observed.state['status']}: wait until ACTIVE"]
        )
        if observed.state["key_schema"] != KEY_SCHEMA:
            raise OrderflowError(
                f"table {self.name(ctx)!r} has key schema {observed.state['key_schema']}, not orderId (HASH); "
                "a key cannot be changed in place. Delete the table (orderflow down) and run up again"
            )
        return status + changed("billing mode", observed.state["billing_mode"], BILLING_MODE)

    def create(self, ctx: Context) -> None:
        # A table of this name may still be DELETING (`down` then `up`): CreateTable is refused until it is gone.
        self._wait_gone(ctx)
        ctx.client("dynamodb").create_table(
            TableName=self.name(ctx),
            KeySchema=KEY_SCHEMA,
            AttributeDefinitions=KEY_ATTRIBUTES,
            BillingMode=BILLING_MODE,
            Tags=tag_list(ctx.config.tags),
        )
        self._wait_active(ctx)

    def update(self, ctx: Context, observed: Observed) -> None:
        self._wait_active(ctx)  # UpdateTable is refused while the table is CREATING or UPDATING
        if observed.state["billing_mode"] != BILLING_MODE:
            ctx.client("dynamodb").update_table(TableName=self.name(ctx), BillingMode=BILLING_MODE)
            self._wait_active(ctx)

    def delete(self, ctx: Context, observed: Observed) -> None:
        if self._status(ctx) not in (None, "DELETING"):
            self._wait_active(ctx)  # DeleteTable is refused while the table is CREATING or UPDATING
            try:
                ctx.client("dynamodb").delete_table(TableName=self.name(ctx))
            except ClientError as e:
                if not is_not_found(e) and error_code(e) != "ResourceInUseException":
                    raise
        self._wait_gone(ctx)

    def _status(self, ctx: Context) -> str | None:
        try:
            return ctx.client("dynamodb").describe_table(TableName=self.name(ctx))["Table"]["TableStatus"]
        except ClientError as e:
            if is_not_found(e):
                return None
            raise

    def _wait_active(self, ctx: Context) -> None:
        self._wait(ctx, "table_exists", "to be ACTIVE")

    def _wait_gone(self, ctx: Context) -> None:
        if self._status(ctx) is not None:
            self._wait(ctx, "table_not_exists", "to finish deleting")

    def _wait(self, ctx: Context, waiter: str, what: str) -> None:
        wait_with(
            ctx,
            self.key,
            f"table {self.name(ctx)} {what}",
            ctx.client("dynamodb"),
            waiter,
            explain=lambda: f"its status is {self._status(ctx)}",
            TableName=self.name(ctx),
        )
