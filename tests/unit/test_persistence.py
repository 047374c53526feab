"""The embedded AWS's state kept across restarts: moto's backends snapshotted and restored whole, SQS before
DynamoDB, another version's snapshot set aside rather than half-loaded; every write it answered survives a kill
(the journal replayed after the last snapshot, a control-plane write snapshotted before its answer)."""

from __future__ import annotations

import pickle
import shutil
import threading
import time

import boto3
import pytest

from orderflow.local.patches.moto import PATCHES
from orderflow.local.server import journal, persistence
from orderflow.local.server.embedded import EmbeddedAws
from orderflow.provision import operations

REGION = "eu-west-2"


@pytest.fixture
def as_aws(ctx):
    with PATCHES.active():
        yield ctx


def _forget_everything() -> None:
    from moto.backends import get_backend

    for name in persistence.SERVICES:
        get_backend(name).reset()  # type: ignore[arg-type]


def test_a_stack_its_queued_orders_and_items_survive_a_restart(ctx, as_aws, tmp_path):
    operations.converge(ctx)
    sqs = ctx.client("sqs")
    url = sqs.get_queue_url(QueueName="OrderQueue")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody='{"orderId": "O-queued"}')
    ctx.client("dynamodb").put_item(TableName="Orders", Item={"orderId": {"S": "O-written"}})
    path = tmp_path / "embedded-aws.state"
    assert persistence.save(path) > 0
    _forget_everything()
    assert ctx.client("sqs").list_queues().get("QueueUrls", []) == []

    restored = persistence.restore(path, None)
    assert restored.taken is not None and restored.set_aside is None
    assert {s.change.action for s in operations.plan(ctx)} == {"unchanged"}  # every resource, ours, as it was
    [message] = sqs.receive_message(QueueUrl=url)["Messages"]
    assert message["Body"] == '{"orderId": "O-queued"}'
    assert ctx.client("dynamodb").get_item(TableName="Orders", Key={"orderId": {"S": "O-written"}})["Item"]
    code = ctx.client("lambda").get_function(FunctionName="ProcessOrderFunction")["Configuration"]["CodeSha256"]
    assert code == ctx.package.code_sha256


def test_queues_are_snapshotted_before_tables_so_no_order_falls_between_them():
    assert persistence.SERVICES.index("sqs") < persistence.SERVICES.index("dynamodb")


def test_no_snapshot_is_a_fresh_start_and_another_versions_is_set_aside_never_loaded(ctx, as_aws, tmp_path):
    path = tmp_path / "embedded-aws.state"
    assert persistence.restore(path, None) == persistence.Restored()
    path.write_bytes(pickle.dumps({"versions": {"orderflow": "0.0.1", "moto": "4.0.0"}, "backends": {"sqs": {}}}))
    restored = persistence.restore(path, None)
    assert restored.taken is None and "it was written by" in (restored.set_aside or "")
    assert not path.exists() and len(list(tmp_path.glob("embedded-aws.state.set-aside-*"))) == 1
    path.write_bytes(b"not a pickle")
    assert "cannot be read" in (persistence.restore(path, None).set_aside or "")


def _wait(condition, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def _client(aws: EmbeddedAws, service: str):
    return boto3.client(
        service, endpoint_url=aws.endpoint, region_name=REGION, aws_access_key_id="admin", aws_secret_access_key="x"
    )


def _killed(state_folder, into):
    """What a kill -9 leaves at this instant: the files as they are (a write() is in the kernel's page cache)."""
    shutil.copytree(state_folder, into)
    return into / "embedded-aws.state"


def _kept(path) -> list[int]:
    return [number for number, _ in journal.segments(path)]


@pytest.fixture
def journaled(tmp_path):
    """An embedded AWS (no runtime) keeping its state in tmp_path/state, with a queue and a table made."""
    (tmp_path / "state").mkdir()
    _forget_everything()  # the embedded AWS serves moto's process-wide backends
    aws = EmbeddedAws(runtime=False, cloudwatch=False, state_file=tmp_path / "state" / "embedded-aws.state").start()
    aws.snapshots.interval = 3600  # no periodic snapshot unless a test takes one
    try:
        url = _client(aws, "sqs").create_queue(QueueName="OrderQueue")["QueueUrl"]
        _client(aws, "dynamodb").create_table(
            TableName="Orders",
            KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        yield aws, url
    finally:
        aws.stop()
        _forget_everything()


def _write_orders(aws: EmbeddedAws, url: str, ids: range) -> None:
    sqs, dynamodb = _client(aws, "sqs"), _client(aws, "dynamodb")
    for n in ids:
        sqs.send_message(QueueUrl=url, MessageBody=f'{{"orderId": "O-{n}"}}')
        dynamodb.put_item(TableName="Orders", Item={"orderId": {"S": f"O-{n}"}})


def _restarted_from(path) -> tuple[EmbeddedAws, int, int]:
    """A new embedded AWS restored from `path`: (it, messages in OrderQueue, items in Orders)."""
    _forget_everything()
    aws = EmbeddedAws(runtime=False, cloudwatch=False, state_file=path).start()
    sqs = _client(aws, "sqs")
    url = sqs.get_queue_url(QueueName="OrderQueue")["QueueUrl"]
    depth = int(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]["ApproximateNumberOfMessages"]
    )
    items = _client(aws, "dynamodb").scan(TableName="Orders", Select="COUNT")["Count"]
    return aws, depth, items


def test_every_acknowledged_write_survives_a_kill_between_snapshots(journaled, tmp_path):
    aws, url = journaled
    taken = aws.snapshots.taken
    _write_orders(aws, url, range(40))
    assert aws.snapshots.taken == taken  # no snapshot since: only the journal holds these 80 writes
    path = _killed(tmp_path / "state", tmp_path / "after-kill")

    restarted, depth, items = _restarted_from(path)
    try:
        assert restarted.restored.replayed == 80 and restarted.restored.taken is not None
        assert (depth, items) == (40, 40)
        assert _kept(path) == [max(_kept(path))]  # the consolidating snapshot at start let go of the replayed ones
    finally:
        restarted.stop()


def test_a_snapshot_holds_what_it_lets_go_of_in_the_journal_and_nothing_is_applied_twice(journaled, tmp_path):
    aws, url = journaled
    _write_orders(aws, url, range(10))
    before = _kept(aws.state_file)
    aws.snapshots._take()
    assert min(_kept(aws.state_file)) > max(before)  # the segments it holds are gone
    _write_orders(aws, url, range(10, 15))
    path = _killed(tmp_path / "state", tmp_path / "after-kill")

    restarted, depth, items = _restarted_from(path)
    try:
        assert restarted.restored.replayed == 10  # only the five orders' two writes each after the snapshot
        assert (depth, items) == (15, 15)
    finally:
        restarted.stop()


def test_a_control_plane_write_is_on_disk_in_a_snapshot_before_it_is_answered(journaled, tmp_path):
    aws, _url = journaled
    arn = _client(aws, "sns").create_topic(Name="OrderTopic")["TopicArn"]
    path = _killed(tmp_path / "state", tmp_path / "after-kill")
    for _number, segment in journal.segments(path):
        segment.unlink()  # not the journal: the snapshot alone holds it, with the ARN the caller was given
    _forget_everything()
    with EmbeddedAws(runtime=False, cloudwatch=False, state_file=path) as restarted:
        topics = _client(restarted, "sns").list_topics()["Topics"]
        assert [t["TopicArn"] for t in topics] == [arn]


def test_a_torn_last_record_ends_the_journal_it_was_never_answered(journaled, tmp_path):
    aws, url = journaled
    _write_orders(aws, url, range(3))
    path = _killed(tmp_path / "state", tmp_path / "after-kill")
    [(_number, segment)] = journal.segments(path)
    frame = journal.Request({"REQUEST_METHOD": "POST"}, b"{}").frame()
    with segment.open("ab") as handle:
        handle.write(frame[: len(frame) // 2])  # the daemon died inside this append
    assert len(list(journal.records(segment))) == 6

    restarted, depth, items = _restarted_from(path)
    try:
        assert restarted.restored.replayed == 6 and (depth, items) == (3, 3)
    finally:
        restarted.stop()


def test_a_failed_write_is_not_journaled(journaled):
    aws, _url = journaled
    dynamodb = _client(aws, "dynamodb")
    dynamodb.put_item(TableName="Orders", Item={"orderId": {"S": "O-1"}})
    appended = aws.snapshots.journal.appended
    with pytest.raises(dynamodb.exceptions.ConditionalCheckFailedException):
        dynamodb.put_item(
            TableName="Orders", Item={"orderId": {"S": "O-1"}}, ConditionExpression="attribute_not_exists(orderId)"
        )
    assert aws.snapshots.journal.appended == appended


def test_stop_leaves_one_snapshot_and_no_journal_and_fresh_discards_both(journaled):
    aws, url = journaled
    _write_orders(aws, url, range(3))
    path = aws.state_file
    aws.stop()
    assert path.exists() and _kept(path) == []
    persistence.discard(path)
    assert not path.exists()


@pytest.mark.parametrize(
    ("environ", "kind"),
    [
        ({"HTTP_X_AMZ_TARGET": "AmazonSQS.SendMessage"}, journal.Durability.JOURNAL),
        ({"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.PutItem"}, journal.Durability.JOURNAL),
        ({"HTTP_X_AMZ_TARGET": "Logs_20140328.PutLogEvents"}, journal.Durability.JOURNAL),
        ({"PATH_INFO": "/service/GraniteServiceVersion20100801/operation/PutMetricData"}, journal.Durability.JOURNAL),
        ({"HTTP_X_AMZ_TARGET": "AmazonSQS.ReceiveMessage"}, journal.Durability.NONE),
        ({"HTTP_X_AMZ_TARGET": "AmazonSQS.ChangeMessageVisibilityBatch"}, journal.Durability.NONE),
        ({"HTTP_X_AMZ_TARGET": "DynamoDB_20120810.GetItem"}, journal.Durability.NONE),
        ({"REQUEST_METHOD": "POST", "PATH_INFO": "/2015-03-31/functions/F/invocations"}, journal.Durability.NONE),
        ({"PATH_INFO": "/moto-api/reset"}, journal.Durability.NONE),
        ({"HTTP_X_AMZ_TARGET": "AmazonSQS.CreateQueue"}, journal.Durability.CONTROL),
        ({"REQUEST_METHOD": "POST", "PATH_INFO": "/2015-03-31/event-source-mappings/"}, journal.Durability.CONTROL),
    ],
)
def test_each_request_is_made_durable_the_way_its_replay_needs(environ, kind):
    assert journal.durability(environ) is kind


def test_the_gate_lets_writes_pass_together_and_a_capture_alone():
    gate = journal.WriteGate()
    gate.enter_write()
    gate.enter_write()  # writes do not wait for one another
    assert not gate.capture(timeout=0.05)  # a write in progress: no capture
    gate.leave_write()
    gate.leave_write()
    assert gate.capture(timeout=5)
    entered = threading.Event()

    def write() -> None:
        gate.enter_write()
        entered.set()
        gate.leave_write()

    writer = threading.Thread(target=write)
    writer.start()
    assert not entered.wait(0.2)  # held back while the capture is on
    gate.release()
    assert entered.wait(30)
    writer.join(30)


def test_a_write_waiting_on_another_request_never_deadlocks_a_capture():
    """A write may make another write while it runs; a capture that is only waiting holds neither back."""
    gate = journal.WriteGate()
    gate.enter_write()
    capturing = threading.Thread(target=lambda: gate.capture(timeout=30))
    capturing.start()
    nested = threading.Event()
    threading.Thread(target=lambda: (gate.enter_write(), nested.set(), gate.leave_write())).start()
    assert nested.wait(30)
    gate.leave_write()
    capturing.join(30)
    assert not capturing.is_alive()
    gate.release()


def test_a_receive_the_restart_interrupted_is_not_charged_to_the_message(journaled, tmp_path):
    """Three kills while a poller held the same message must not dead-letter it: each restart gives it back."""
    aws, url = journaled
    sqs = _client(aws, "sqs")
    for n in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"m{n}")
    held = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=2, VisibilityTimeout=600)["Messages"]
    assert len(held) == 2
    aws.snapshots._take()  # the snapshot holds them as received (a receive is not journaled)
    path = _killed(tmp_path / "state", tmp_path / "after-kill")

    restarted, depth, _items = _restarted_from(path)
    try:
        assert depth == 3  # visible at once, not after the 600 s the dead holder asked for
        again = _client(restarted, "sqs").receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["ApproximateReceiveCount"]
        )["Messages"]
        assert sorted(m["Attributes"]["ApproximateReceiveCount"] for m in again) == ["1", "1", "1"]
    finally:
        restarted.stop()
