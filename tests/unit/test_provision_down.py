"""`down` and ownership: only what this stack owns is removed; foreign resources are refused and never touched."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from orderflow.errors import ForeignResourceError
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
