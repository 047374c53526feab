"""DynamoDB table `Orders`: key `orderId` (S), on-demand billing."""

from __future__ import annotations

from orderflow.aws import or_none
from orderflow.errors import Conflict
from orderflow.provision.base import Context, Observed, Resource, changed
from orderflow.provision.grants import OBSERVERS, Grant, grant
from orderflow.provision.ops import Call, Operation, Wait
from orderflow.stack import tag_dict, tag_list

KEY_SCHEMA = [{"AttributeName": "orderId", "KeyType": "HASH"}]
KEY_ATTRIBUTES = [{"AttributeName": "orderId", "AttributeType": "S"}]
BILLING_MODE = "PAY_PER_REQUEST"


class Table(Resource):
    key = "table"
    kind = "DynamoDB table"

    def grants(self, ctx: Context) -> list[Grant]:
        table = self.arn(ctx)
        return [
            grant(OBSERVERS, ("dynamodb:DescribeTable", "dynamodb:ListTagsOfResource"), table),
            grant({"up"}, ("dynamodb:CreateTable", "dynamodb:TagResource", "dynamodb:UpdateTable"), table),
            grant({"down"}, ("dynamodb:DeleteTable",), table),
            grant({"verify", "trace"}, ("dynamodb:GetItem",), table),  # the order, read back by its key
        ]

    def name(self, ctx: Context) -> str:
        return ctx.config.table_name

    def tag_call(self, ctx: Context) -> Call | None:
        params = {"ResourceArn": self.arn(ctx), "Tags": tag_list(ctx.config.tags)}
        return Call("dynamodb", "TagResource", params, self.name(ctx))

    def arn(self, ctx: Context) -> str:
        return ctx.arns.table(self.name(ctx))

    def read(self, ctx: Context) -> Observed | None:
        ddb = ctx.client("dynamodb")
        table = self._describe(ctx)
        if table is None:
            return None
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

    def held(self, observed: Observed) -> tuple[int, str] | None:
        # DynamoDB updates ItemCount about every six hours: "about", and asked about even at 0
        return int(observed.state.get("item_count") or 0), "order(s)"

    def _wait(self, waiter: str, what: str, ctx: Context, reasons: tuple[str, ...] = ()) -> Wait:
        # DynamoDB API Reference, TableDescription.TableStatus: a table on its way to ACTIVE is CREATING or
        # UPDATING; on its way out, DELETING. Any other status met (ARCHIVED, INACCESSIBLE_ENCRYPTION_CREDENTIALS)
        # will not pass by waiting.
        passing = ("DELETING",) if waiter == "table_not_exists" else ("CREATING", "UPDATING")
        return Wait("dynamodb", f"table {self.name(ctx)}", what, waiter, params={"TableName": self.name(ctx)},
                    reasons=reasons, state_path="Table.TableStatus", passing=passing)  # fmt: skip

    def _active(self, ctx: Context, reasons: tuple[str, ...] = ()) -> Wait:
        return self._wait("table_exists", "to be ACTIVE", ctx, reasons)

    def _gone(self, ctx: Context, reasons: tuple[str, ...] = ()) -> Wait:
        return self._wait("table_not_exists", "to finish deleting", ctx, reasons)

    def create_operations(self, ctx: Context, vanishing: Observed | None) -> list[Operation]:
        # A table of this name still DELETING (`down` then `up`): CreateTable is refused until it is gone. Only
        # then: a table that exists in any other state is no reason to wait (it was made by someone else meanwhile).
        before = [self._gone(ctx, ("a table of this name is still DELETING",))] if vanishing is not None else []
        create = Call(
            "dynamodb",
            "CreateTable",
            {
                "TableName": self.name(ctx),
                "KeySchema": KEY_SCHEMA,
                "AttributeDefinitions": KEY_ATTRIBUTES,
                "BillingMode": BILLING_MODE,
                "Tags": tag_list(ctx.config.tags),
            },
            self.name(ctx),
            exists=("ResourceInUseException",),
        )
        return [*before, create, self._active(ctx)]

    def update_operations(self, ctx: Context, observed: Observed) -> list[Operation]:
        if observed.state["key_schema"] != KEY_SCHEMA:
            raise Conflict(
                f"table {self.name(ctx)!r} has key schema {observed.state['key_schema']}, not orderId (HASH); "
                "a key cannot be changed in place. Delete the table (orderflow down) and run up again"
            )
        status = observed.state["status"]
        # UpdateTable is refused while the table is CREATING or UPDATING
        operations: list[Operation] = (
            [] if status == "ACTIVE" else [self._active(ctx, (f"table is {status}: wait until ACTIVE",))]
        )
        billing = changed("billing mode", observed.state["billing_mode"], BILLING_MODE)
        if billing:
            update = Call(
                "dynamodb",
                "UpdateTable",
                {"TableName": self.name(ctx), "BillingMode": BILLING_MODE},
                self.name(ctx),
                tuple(billing),
            )
            operations += [update, self._active(ctx)]
        return operations

    def delete_operations(self, ctx: Context, observed: Observed) -> list[Operation]:
        # DeleteTable is refused while the table is CREATING or UPDATING; a concurrent delete is as good as ours.
        ready = [] if observed.state["status"] == "ACTIVE" else [self._active(ctx)]
        delete = Call(
            "dynamodb",
            "DeleteTable",
            {"TableName": self.name(ctx)},
            self.name(ctx),
            gone_ok=True,
            also_ok=("ResourceInUseException",),
        )
        return [*ready, delete, self._gone(ctx)]

    def _describe(self, ctx: Context) -> dict | None:
        found = or_none(lambda: ctx.client("dynamodb").describe_table(TableName=self.name(ctx)))
        return None if found is None else found["Table"]

    def explain(self, ctx: Context, wait: Wait) -> str | None:
        table = self._describe(ctx)
        return "it does not exist" if table is None else f"its status is {table['TableStatus']}"
