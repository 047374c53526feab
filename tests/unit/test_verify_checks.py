"""verify's check logic against moto, with the log lines the runtime would write put there by hand."""

from __future__ import annotations

import json
import time

import pytest

from orderflow.flow import publish, trace
from orderflow.flow.verify import verify
from orderflow.provision import operations

pytestmark = pytest.mark.usefixtures("mocked")


def _no_sleep(_seconds: float) -> None:
    pass


@pytest.fixture
def stack(ctx):
    operations.converge(ctx)
    return ctx


def _deliver(ctx, published, outcome="written", write=True, reason=None):
    """What the runtime and handler leave behind for one processed order."""
    request_id = "11111111-2222-3333-4444-555555555555"
    logs = ctx.client("logs")
    logs.create_log_stream(logGroupName=ctx.config.log_group_name, logStreamName="2026/01/01/[$LATEST]abc")
    now = int(time.time() * 1000)
    record = {
        "event": "order",
        "outcome": outcome,
        "orderId": published.order_id,
        "sqsMessageId": "sqs-1",
        "snsMessageId": published.message_id,
        "attempt": "1",
        "requestId": request_id,
    }
    if reason:
        record["reason"] = reason
    lines = [
        f"START RequestId: {request_id} Version: $LATEST",
        json.dumps(record, default=str),  # as the handler prints it: non-ASCII and control characters escaped
        f"END RequestId: {request_id}",
        f"REPORT RequestId: {request_id}\tDuration: 12.00 ms\tBilled Duration: 12 ms",
    ]
    logs.put_log_events(
        logGroupName=ctx.config.log_group_name,
        logStreamName="2026/01/01/[$LATEST]abc",
        logEvents=[{"timestamp": now, "message": m} for m in lines],
    )
    if write:
        item = {k: ({"N": str(v)} if isinstance(v, int) else {"S": v}) for k, v in published.order.items()}
        ctx.client("dynamodb").put_item(TableName=ctx.config.table_name, Item=item)


def _publish(ctx, order_id=None):
    [published] = publish.publish_orders(ctx.aws, ctx.config, [publish.sample_order(order_id)])
    return published


def test_all_hops_pass_with_complete_evidence(stack):
    published = _publish(stack)
    _deliver(stack, published)
    report = verify(stack.aws, stack.config, published.order_id, published, timeout=1, sleep=_no_sleep)
    assert report.passed, report.checks
    assert [c.hop for c in report.checks] == ["wiring", "sqs", "lambda", "dynamodb", "logs", "dlq"]
    assert "12.00 ms" in report.checks[2].evidence


def test_an_item_that_differs_from_the_published_order_fails_dynamodb(stack):
    published = _publish(stack)
    _deliver(stack, published)
    stack.client("dynamodb").update_item(
        TableName="Orders",
        Key={"orderId": {"S": published.order_id}},
        UpdateExpression="SET #s = :s",
        ExpressionAttributeNames={"#s": "status"},
        ExpressionAttributeValues={":s": {"S": "tampered"}},
    )
    report = verify(stack.aws, stack.config, published.order_id, published, timeout=0, sleep=_no_sleep)
    assert report.first_failure.hop == "dynamodb" and "tampered" in report.first_failure.evidence


def test_a_rejected_order_fails_the_lambda_hop_with_the_reason(stack):
    published = _publish(stack)
    _deliver(stack, published, outcome="invalid", write=False)
    report = verify(stack.aws, stack.config, published.order_id, published, timeout=0, sleep=_no_sleep)
    assert report.first_failure.hop == "lambda" and "rejected" in report.first_failure.evidence


def test_a_write_dynamodb_refused_fails_the_dynamodb_hop_with_dynamodbs_reason(stack):
    published = _publish(stack)
    reason = "DynamoDB: An error occurred (ResourceNotFoundException) when calling the PutItem operation"
    _deliver(stack, published, outcome="error", write=False, reason=reason)
    report = verify(stack.aws, stack.config, published.order_id, published, timeout=0, sleep=_no_sleep)
    assert [c.passed for c in report.checks[:4]] == [True, True, True, False]
    assert report.first_failure.evidence == f"DynamoDB refused the write: {reason}"


@pytest.mark.parametrize("order_id", ["ordre-café-1", "back\\slash-2", "tab\tbed-3", "bell\x07-4", "日本語"])
def test_an_order_id_the_handlers_json_escapes_is_proven_on_every_hop_and_traced(stack, order_id):
    published = _publish(stack, order_id)
    _deliver(stack, published)
    report = verify(stack.aws, stack.config, order_id, published, timeout=0, sleep=_no_sleep)
    assert report.passed, report.checks
    [attempt] = trace.attempts(stack.aws, stack.config, order_id, None, published.published_ms - 60_000)
    assert attempt.record.order_id == order_id and attempt.duration_ms == 12.0


def test_nothing_delivered_fails_the_sqs_hop_and_polls_until_the_timeout(stack, fake_time):
    published = _publish(stack)
    report = verify(
        stack.aws, stack.config, published.order_id, published, timeout=5, sleep=fake_time.sleep, clock=fake_time.clock
    )
    assert report.first_failure.hop == "sqs"
    assert sum(fake_time.sleeps) == pytest.approx(5.0) and fake_time.sleeps[0] == 0.1  # backoff, never past the timeout


def test_a_disabled_mapping_fails_the_lambda_hop_not_sqs(stack):
    lam = stack.client("lambda")
    [mapping] = lam.list_event_source_mappings(FunctionName="ProcessOrderFunction")["EventSourceMappings"]
    lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    published = _publish(stack)
    report = verify(stack.aws, stack.config, published.order_id, published, timeout=0, sleep=_no_sleep)
    assert report.checks[1].passed is None and report.first_failure.hop == "lambda"
    assert "create or enable the mapping" in report.first_failure.hint


def test_a_missing_queue_policy_fails_the_wiring(stack):
    url = stack.client("sqs").get_queue_url(QueueName="OrderQueue")["QueueUrl"]
    stack.client("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": ""})
    published = _publish(stack)
    _deliver(stack, published)
    report = verify(stack.aws, stack.config, published.order_id, published, timeout=0, sleep=_no_sleep)
    assert report.first_failure.hop == "wiring"


def test_an_unknown_order_fails_on_dynamodb_with_the_log_hops_unchecked(stack):
    report = verify(stack.aws, stack.config, "nope", None, timeout=0, sleep=_no_sleep)
    assert [c.passed for c in report.checks] == [True, None, None, False, None, True]
    assert report.first_failure.hop == "dynamodb"


def test_a_dead_letter_for_the_order_fails_the_dlq_hop_and_stays_there(stack):
    published = _publish(stack)
    _deliver(stack, published)
    url = stack.client("sqs").get_queue_url(QueueName="OrderQueueDLQ")["QueueUrl"]
    stack.client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps(published.order))
    report = verify(stack.aws, stack.config, published.order_id, published, timeout=0, sleep=_no_sleep)
    assert report.first_failure.hop == "dlq"
    attributes = stack.client("sqs").get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "1"
