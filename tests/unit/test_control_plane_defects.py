"""AWS control-plane answers that moto never gives, given to orderflow as AWS gives them (shapes from the API
references): each test failed before its fix."""

from __future__ import annotations

import time

import boto3
import pytest
from botocore.stub import ANY, Stubber

from orderflow.aws import Aws
from orderflow.errors import OrderflowError
from orderflow.flow import dlq
from orderflow.provision import operations
from orderflow.provision.planner import observe
from tests.conftest import _HttpStatus, inject_error


def _steps(report):
    return {r.key: r.outcome for r in report.results}


def test_a_function_in_state_failed_is_not_unchanged_and_the_reason_is_reported(ctx):
    from moto.awslambda.models import lambda_backends

    operations.converge(ctx)
    function = lambda_backends[ctx.aws.account][ctx.aws.region].get_function(ctx.config.function_name)
    function.state = "Failed"

    def with_reason(parsed, **_):
        if parsed.get("State") == "Failed" or parsed.get("Configuration", {}).get("State") == "Failed":
            config = parsed.get("Configuration", parsed)
            config.update(StateReason="Lambda was unable to create the ENI", StateReasonCode="EniLimitExceeded")

    ctx.aws.register("after-call.lambda.GetFunction", with_reason)
    ctx.aws.register("after-call.lambda.GetFunctionConfiguration", with_reason)
    [step] = [s for s in operations.converge(ctx, dry_run=True).steps if s.resource.key == "function"]
    assert step.change.action == "update"
    assert "Failed: Lambda was unable to create the ENI" in step.change.details[0]
    [row] = [r for r in operations.inventory(ctx) if r["key"] == "function"]
    assert row["detail"] == "Failed: Lambda was unable to create the ENI"
    # moto keeps it Failed through the update: the waiter's failure names AWS's reason, not "gave up waiting"
    with pytest.raises(OrderflowError, match=r"Failed: Lambda was unable to create the ENI \(EniLimitExceeded\)"):
        operations.converge(ctx)


def _hide_function_tags(aws: Aws) -> None:
    """GetFunction as AWS answers a caller without lambda:ListTags (Lambda API Reference, GetFunction: TagsError)."""

    def hide(parsed, **_):
        parsed.pop("Tags", None)
        parsed["TagsError"] = {"ErrorCode": "AccessDeniedException", "Message": "not authorized: lambda:ListTags"}

    aws.register("after-call.lambda.GetFunction", hide)


def test_tags_withheld_by_getfunction_are_read_with_listtags(ctx):
    operations.converge(ctx)
    _hide_function_tags(ctx.aws)
    assert set(_steps(operations.converge(ctx)).values()) == {"unchanged"}


def test_a_function_whose_tags_cannot_be_read_is_neither_adopted_nor_left_running_by_down(ctx):
    operations.converge(ctx)
    _hide_function_tags(ctx.aws)
    inject_error(ctx.aws, "before-call.lambda.ListTags", "AccessDeniedException", "not authorized", status=403)
    [function] = [o for o in observe(ctx) if o.resource.key == "function"]
    assert function.ownership == "unknown"  # not "foreign": nobody said it is someone else's
    for attempt in (lambda: operations.converge(ctx), lambda: operations.plan_down(ctx)):
        with pytest.raises(OrderflowError, match="Cannot tell whether Lambda function 'ProcessOrderFunction'"):
            attempt()
    ctx.client("lambda").get_function(FunctionName=ctx.config.function_name)  # nothing was deleted
    [row] = [r for r in operations.inventory(ctx) if r["key"] == "function"]
    assert row["state"] == "owner unknown"


def test_a_missing_topic_is_missing_even_where_its_tags_read_as_empty(ctx):
    # Some endpoints answer ListTagsForResource for a topic that does not exist with an empty list.
    ctx.aws.register(
        "before-call.sns.ListTagsForResource", lambda **_: (_HttpStatus(200), {"Tags": [], "ResponseMetadata": {}})
    )
    [topic] = [o for o in observe(ctx) if o.resource.key == "topic"]
    assert topic.ownership == "missing"
    assert _steps(operations.converge(ctx))["topic"] == "created"


def test_the_partition_comes_from_the_region_whatever_the_endpoint():
    for region, partition in (("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov"), ("eu-west-2", "aws")):
        aws = Aws(boto3.Session(region_name=region), endpoint_url="http://127.0.0.1:1")
        aws._account = "123456789012"
        assert aws.arns.partition == partition
        assert aws.arns.queue("Q") == f"arn:{partition}:sqs:{region}:123456789012:Q"


def test_a_mapping_is_retried_while_the_roles_new_policies_propagate(ctx, fake_time):
    inject_error(
        ctx.aws,
        "before-call.lambda.CreateEventSourceMapping",
        "InvalidParameterValueException",
        "The provided execution role does not have permissions to call ReceiveMessage on SQS",
        times=2,
    )
    assert _steps(operations.converge(ctx))["trigger"] == "created"
    assert fake_time.sleeps == [1.0, 1.0]


# -- dlq redrive on AWS: SQS's message move task, followed by its handle ------------------------------------------


@pytest.fixture
def stubbed(ctx):
    operations.converge(ctx)
    sqs = ctx.client("sqs")
    stubber = Stubber(sqs)
    dlq_arn = ctx.arns.queue(ctx.config.dlq_name)
    # the DLQ's URL is read first (GetQueueUrl + GetQueueAttributes)
    url = sqs.get_queue_url(QueueName=ctx.config.dlq_name)["QueueUrl"]
    stubber.add_response("get_queue_url", {"QueueUrl": url})
    stubber.add_response("get_queue_attributes", {"Attributes": {"QueueArn": dlq_arn}})
    return ctx, stubber, dlq_arn


def test_redrive_follows_its_own_task_through_an_empty_listing_and_past_an_older_one(stubbed, fake_time):
    ctx, stubber, dlq_arn = stubbed
    now_ms = int(time.time() * 1000)
    older = {
        "Status": "COMPLETED",
        "SourceArn": dlq_arn,
        "StartedTimestamp": now_ms - 3_600_000,
        "ApproximateNumberOfMessagesMoved": 99,
    }
    list_params = {"SourceArn": dlq_arn, "MaxResults": 10}
    stubber.add_response("list_message_move_tasks", {"Results": [older]}, list_params)
    stubber.add_response(
        "start_message_move_task", {"TaskHandle": "h-ours"}, {"SourceArn": dlq_arn, "DestinationArn": ANY}
    )
    stubber.add_response("list_message_move_tasks", {"Results": []}, list_params)  # not listed yet
    running = {
        "TaskHandle": "h-ours",
        "Status": "RUNNING",
        "StartedTimestamp": now_ms,
        "ApproximateNumberOfMessagesMoved": 2,
    }
    stubber.add_response("list_message_move_tasks", {"Results": [running, older]}, list_params)
    done = {"Status": "COMPLETED", "StartedTimestamp": now_ms, "ApproximateNumberOfMessagesMoved": 7}
    stubber.add_response("list_message_move_tasks", {"Results": [done, older]}, list_params)
    with stubber:
        result = dlq._move_task(ctx.aws, ctx.config, sleep=fake_time.sleep, clock=fake_time.clock)
    assert (result.moved, result.method) == (7, "SQS message move task")
    stubber.assert_no_pending_responses()


def test_redrive_explains_a_task_already_running_and_starts_none(stubbed):
    ctx, stubber, dlq_arn = stubbed
    running = {
        "TaskHandle": "h-theirs",
        "Status": "RUNNING",
        "StartedTimestamp": 1,
        "ApproximateNumberOfMessagesMoved": 3,
        "ApproximateNumberOfMessagesToMove": 10,
    }
    stubber.add_response("list_message_move_tasks", {"Results": [running]}, {"SourceArn": dlq_arn, "MaxResults": 10})
    expected = r"already running on OrderQueueDLQ \(3 of 10 moved\).*--task-handle h-theirs"
    with stubber, pytest.raises(OrderflowError, match=expected):
        dlq._move_task(ctx.aws, ctx.config)
    stubber.assert_no_pending_responses()


def test_redrive_gives_up_waiting_in_bounded_time_and_says_the_task_goes_on(stubbed, fake_time):
    ctx, stubber, dlq_arn = stubbed
    params = {"SourceArn": dlq_arn, "MaxResults": 10}
    stubber.add_response("list_message_move_tasks", {"Results": []}, params)
    stubber.add_response("start_message_move_task", {"TaskHandle": "h"}, {"SourceArn": dlq_arn, "DestinationArn": ANY})
    running = {"TaskHandle": "h", "Status": "RUNNING", "StartedTimestamp": 1, "ApproximateNumberOfMessagesMoved": 4}
    for _ in range(6):
        stubber.add_response("list_message_move_tasks", {"Results": [running]}, params)
    with stubber, pytest.raises(OrderflowError, match="still running after 0 minutes \\(4 moved so far\\); it goes on"):
        dlq._move_task(ctx.aws, ctx.config, sleep=fake_time.sleep, clock=fake_time.clock, limit=5)
