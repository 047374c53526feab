"""`down` and ownership: only what this stack owns is removed; foreign resources are refused and never touched."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from orderflow.errors import ForeignResourceError
from orderflow.local.patches.moto import PATCHES
from orderflow.provision import operations
from tests.conftest import count_calls, inject_error


def _states(ctx) -> dict[str, str]:
    return {row["key"]: row["state"] for row in operations.inventory(ctx)}


def test_down_removes_everything_the_stack_owns(ctx):
    operations.converge(ctx)
    results = operations.teardown(ctx)
    assert [r.key for r in results] == [
        "trigger",
        "function",
        "log_group",
        "role",
        "subscription",
        "queue",
        "dlq_alarm",
        "dlq",
        "alerts_topic",
        "topic",
        "table",
    ]
    assert {r.outcome for r in results} == {"deleted"}
    assert set(_states(ctx).values()) == {"missing"}
    assert ctx.client("iam").list_roles()["Roles"] == []
    assert ctx.client("sqs").list_queues().get("QueueUrls", []) == []


def test_down_twice_treats_already_gone_as_success(ctx):
    operations.converge(ctx)
    operations.teardown(ctx)
    results = operations.teardown(ctx)
    assert {r.outcome for r in results} == {"already gone"}


def test_down_after_an_interrupted_up_finishes_the_job(ctx):
    inject_error(ctx.aws, "before-call.lambda.CreateFunction", "ServiceException", "boom")
    with pytest.raises(ClientError):
        operations.converge(ctx)
    states = _states(ctx)
    assert states["log_group"] == "exists" and states["function"] == "missing"
    results = {r.key: r.outcome for r in operations.teardown(ctx)}
    assert results["function"] == "already gone" and results["table"] == "deleted"
    assert set(_states(ctx).values()) == {"missing"}


def test_an_interrupted_down_is_finished_by_the_next_down(ctx):
    operations.converge(ctx)
    inject_error(ctx.aws, "before-call.sqs.DeleteQueue", "InternalError", "boom", times=1, status=400)
    with pytest.raises(ClientError):
        operations.teardown(ctx)
    assert _states(ctx)["queue"] == "exists"
    operations.teardown(ctx)
    assert set(_states(ctx).values()) == {"missing"}


def test_up_after_an_interrupted_up_converges(ctx):
    inject_error(ctx.aws, "before-call.iam.PutRolePolicy", "ServiceFailure", "boom", times=1, status=400)
    with pytest.raises(ClientError):
        operations.converge(ctx)
    report = {r.key: r.outcome for r in operations.converge(ctx).results}
    assert report["role"] == "updated" and report["function"] == "created"
    assert {s.change.action for s in operations.converge(ctx, dry_run=True).steps} == {"unchanged"}


def test_keep_data_keeps_the_table_and_its_items(ctx):
    operations.converge(ctx)
    ctx.client("dynamodb").put_item(TableName="Orders", Item={"orderId": {"S": "O1"}})
    results = {r.key: r.outcome for r in operations.teardown(ctx, keep_data=True)}
    assert results["table"] == "kept"
    assert ctx.client("dynamodb").get_item(TableName="Orders", Key={"orderId": {"S": "O1"}})["Item"]


def test_up_refuses_an_untagged_table_of_the_same_name_and_writes_nothing(ctx):
    ctx.client("dynamodb").create_table(
        TableName="Orders",
        KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    calls = count_calls(ctx.aws)
    with pytest.raises(ForeignResourceError, match=r"DynamoDB table 'Orders' already exists.*outside orderflow"):
        operations.converge(ctx)
    assert calls.writes == []


def test_up_refuses_a_queue_owned_by_another_stack(ctx):
    ctx.client("sqs").create_queue(QueueName="OrderQueue", tags={"orderflow:stack": "other"})
    with pytest.raises(ForeignResourceError, match="belongs to stack 'other'"):
        operations.converge(ctx)


def test_down_never_touches_foreign_resources(ctx):
    operations.converge(ctx)
    # Replace our role and topic by same-named ones someone else made.
    for name in ctx.client("iam").list_role_policies(RoleName="ProcessOrderFunction-role")["PolicyNames"]:
        ctx.client("iam").delete_role_policy(RoleName="ProcessOrderFunction-role", PolicyName=name)
    ctx.client("iam").delete_role(RoleName="ProcessOrderFunction-role")
    ctx.client("iam").create_role(RoleName="ProcessOrderFunction-role", AssumeRolePolicyDocument=json.dumps({}))
    topic_arn = ctx.arns.topic("OrderTopic")
    ctx.client("sns").untag_resource(ResourceArn=topic_arn, TagKeys=["orderflow:stack"])

    results = {r.key: r.outcome for r in operations.teardown(ctx)}
    assert results["role"] == "not ours, left alone"
    assert results["topic"] == "not ours, left alone"
    assert results["subscription"] == "not ours, left alone"
    assert results["function"] == "deleted" and results["table"] == "deleted"
    ctx.client("iam").get_role(RoleName="ProcessOrderFunction-role")
    ctx.client("sns").get_topic_attributes(TopicArn=topic_arn)
    assert ctx.client("sns").list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]


def test_status_reports_queue_depths_and_foreign_owner(ctx):
    operations.converge(ctx)
    url = ctx.client("sqs").get_queue_url(QueueName="OrderQueueDLQ")["QueueUrl"]
    ctx.client("sqs").send_message(QueueUrl=url, MessageBody="dead")
    ctx.client("sns").tag_resource(
        ResourceArn=ctx.arns.topic("OrderTopic"), Tags=[{"Key": "orderflow:stack", "Value": "x"}]
    )
    rows = {row["key"]: row for row in operations.inventory(ctx)}
    assert rows["dlq"]["messages"] == 1
    assert rows["queue"]["messages"] == 0
    assert rows["topic"]["state"] == "foreign" and rows["topic"]["owner"] == "x"
    assert rows["trigger"]["detail"] == "Enabled"


@pytest.fixture
def as_aws(ctx):
    """moto invokes a queue's function itself inside SendMessage (and, without Docker, loses the messages): the
    embedded AWS's patches make its queues hold messages as SQS does."""
    with PATCHES.active():
        yield ctx


def _queue(ctx, name: str) -> str:
    return ctx.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]


def _send(ctx, name: str, count: int) -> None:
    for i in range(count):
        ctx.client("sqs").send_message(QueueUrl=_queue(ctx, name), MessageBody=f'{{"orderId": "O{i}"}}')


def test_keep_data_keeps_every_queue_holding_orders_and_the_dlq_it_redrives_to(ctx, as_aws):
    operations.converge(ctx)
    _send(ctx, "OrderQueue", 10)
    results = {r.key: r for r in operations.teardown(ctx, keep_data=True)}
    assert {k for k, r in results.items() if r.outcome == "kept"} == {"table", "queue", "dlq"}
    assert results["queue"].details == ("kept, with its 10 queued order(s)",)
    assert results["dlq"].details == ("kept, with its 0 dead letter(s)",)
    attributes = ctx.client("sqs").get_queue_attributes(QueueUrl=_queue(ctx, "OrderQueue"), AttributeNames=["All"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "10"
    assert "RedrivePolicy" in attributes["Attributes"]  # still redrives to the kept DLQ
    assert results["function"].outcome == "deleted" and results["topic"].outcome == "deleted"


def test_keep_data_keeps_a_dlq_with_letters_and_deletes_an_empty_queue(ctx, as_aws):
    operations.converge(ctx)
    _send(ctx, "OrderQueueDLQ", 3)
    results = {r.key: r for r in operations.teardown(ctx, keep_data=True)}
    assert results["dlq"].outcome == "kept" and results["dlq"].details == ("kept, with its 3 dead letter(s)",)
    assert results["queue"].outcome == "deleted" and results["queue"].details == ()


def test_down_asks_about_queued_orders_and_dead_letters_and_says_what_went(ctx, as_aws):
    operations.converge(ctx)
    _send(ctx, "OrderQueue", 2)
    _send(ctx, "OrderQueueDLQ", 1)
    steps = operations.plan_down(ctx)
    assert operations.data_question(steps) == (
        "Delete DynamoDB table 'Orders' with about 0 order(s), SQS dead-letter queue 'OrderQueueDLQ' with 1 dead "
        "letter(s), SQS queue 'OrderQueue' with 2 queued order(s)?"
    )
    results = {r.key: r for r in operations.teardown(ctx, steps)}
    assert results["queue"].details == ("2 queued order(s) deleted with it",)
    assert results["dlq"].details == ("1 dead letter(s) deleted with it",)


def test_with_the_table_kept_and_the_queues_empty_nothing_is_asked(ctx):
    operations.converge(ctx)
    assert operations.data_question(operations.plan_down(ctx, keep_data=True)) is None
