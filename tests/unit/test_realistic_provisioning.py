"""`up`, `down` and `dlq show` against a realistic embedded AWS in this process, on the real clock at a small time
scale: what a user meets on AWS's slow, eventually consistent control plane. The tests wait on AWS's own signals
(through orderflow's code); the time scale only makes those waits short."""

from __future__ import annotations

import contextlib
import json

import boto3
import pytest

from orderflow.aws import connect
from orderflow.flow import dlq
from orderflow.local.server import state
from orderflow.local.server.embedded import EmbeddedAws
from orderflow.provision import operations
from orderflow.provision.base import Context
from orderflow.provision.executor import Progress
from orderflow.provision.planner import observe
from orderflow.stack import StackConfig

# 60 s of blocked queue name -> 6 s; a mapping is Enabled after 1.5 s; a role is assumable after 1 s.
SCALE = 0.1


@pytest.fixture(scope="module")
def endpoint():
    with EmbeddedAws(runtime=False, time_scale=SCALE, realistic=True) as aws:
        yield aws.endpoint


class Recorded(Progress):
    def __init__(self) -> None:
        self.waits: list[tuple[str, str]] = []

    def waiting(self, key: str, text: str) -> None:
        self.waits.append((key, text))


@pytest.fixture
def ctx(endpoint, request) -> Context:
    aws = connect(region=state.LOCAL_REGION, endpoint_url=endpoint, credentials=state.LOCAL_CREDENTIALS)
    return Context(aws=aws, config=StackConfig(f"r{abs(hash(request.node.name)) % 10**6}"), time_scale=SCALE)


def test_up_returns_once_everything_is_ready_and_down_then_up_at_once_succeeds(ctx):
    progress = Recorded()
    operations.converge(ctx, progress=progress)
    lam = ctx.client("lambda")
    [mapping] = lam.list_event_source_mappings(FunctionName=ctx.config.function_name)["EventSourceMappings"]
    assert mapping["State"] == "Enabled"
    assert lam.get_function_configuration(FunctionName=ctx.config.function_name)["State"] == "Active"
    assert ctx.client("dynamodb").describe_table(TableName=ctx.config.table_name)["Table"]["TableStatus"] == "ACTIVE"
    # the function waited for IAM to let Lambda assume the new role
    assert any(key == "function" and "cannot be assumed" in text for key, text in progress.waits)

    operations.teardown(ctx)
    assert [o.ownership for o in observe(ctx)] == ["missing"] * 11  # the mapping's asynchronous delete is over
    progress = Recorded()
    report = operations.converge(ctx, progress=progress)
    assert {r.outcome for r in report.results} == {"created"}
    # the queue names were still blocked (QueueDeletedRecently), and up waited instead of failing half way (the
    # main queue waits for its DLQ, so by its turn the block has usually passed)
    waited = {key for key, text in progress.waits if "60 s after a queue of that name was deleted" in text}
    assert "dlq" in waited
    assert operations.converge(ctx, dry_run=True).steps[-1].change.action == "unchanged"


def test_down_waits_out_a_mapping_that_is_still_creating(ctx):
    operations.converge(ctx)
    lam = ctx.client("lambda")
    [old] = lam.list_event_source_mappings(FunctionName=ctx.config.function_name)["EventSourceMappings"]
    lam.delete_event_source_mapping(UUID=old["UUID"])
    # the trigger as an interrupted `up` leaves it: Deleting, then a new one Creating as soon as AWS allows
    queue_arn = ctx.arns.queue(ctx.config.queue_name)
    new = None
    while new is None:
        with contextlib.suppress(lam.exceptions.ResourceConflictException):
            new = lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=ctx.config.function_name)
    assert new["State"] == "Creating"
    results = {r.key: r.outcome for r in operations.teardown(ctx)}
    assert results["trigger"] == "deleted"
    assert lam.list_event_source_mappings(FunctionName=ctx.config.function_name)["EventSourceMappings"] == []


def test_a_table_still_deleting_is_planned_as_missing_and_created_once_gone(ctx):
    operations.converge(ctx)
    ddb = ctx.client("dynamodb")
    ddb.delete_table(TableName=ctx.config.table_name)
    [table] = [o for o in observe(ctx) if o.resource.key == "table"]
    assert table.ownership == "missing"
    report = operations.converge(ctx)
    assert {r.key: r.outcome for r in report.results}["table"] == "created"
    assert ddb.describe_table(TableName=ctx.config.table_name)["Table"]["TableStatus"] == "ACTIVE"


def test_dlq_show_reads_every_letter_sqs_counts_although_short_polls_come_back_empty(ctx, endpoint):
    operations.converge(ctx)
    sqs = boto3.client(
        "sqs", endpoint_url=endpoint, region_name=state.LOCAL_REGION, aws_access_key_id="a", aws_secret_access_key="a"
    )
    url = sqs.get_queue_url(QueueName=ctx.config.dlq_name)["QueueUrl"]
    for i in range(25):
        sqs.send_message(QueueUrl=url, MessageBody=json.dumps({"orderId": f"o-{i}"}))
    for _ in range(3):
        found = dlq.show(ctx.aws, ctx.config)
        assert (len(found.letters), found.counted, found.unread) == (25, 25, 0)
    capped = dlq.show(ctx.aws, ctx.config, limit=10)
    assert (len(capped.letters), capped.counted, capped.unread) == (10, 25, 15)
