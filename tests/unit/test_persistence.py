"""The embedded AWS's state kept across restarts: moto's backends snapshotted and restored whole, SQS before
DynamoDB, another version's snapshot set aside rather than half-loaded."""

from __future__ import annotations

import pickle
import time

import pytest

from orderflow.local.patches.moto import PATCHES
from orderflow.local.server import persistence
from orderflow.provision import operations


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

    restored = persistence.restore(path)
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
    assert persistence.restore(path) == persistence.Restored()
    path.write_bytes(pickle.dumps({"versions": {"orderflow": "0.0.1", "moto": "4.0.0"}, "backends": {"sqs": {}}}))
    restored = persistence.restore(path)
    assert restored.taken is None and "it was written by" in (restored.set_aside or "")
    assert not path.exists() and len(list(tmp_path.glob("embedded-aws.state.set-aside-*"))) == 1
    path.write_bytes(b"not a pickle")
    assert "cannot be read" in (persistence.restore(path).set_aside or "")


def test_snapshots_are_taken_when_something_was_written_and_once_more_on_stop(tmp_path, mocked):
    path = tmp_path / "embedded-aws.state"
    snapshots = persistence.Snapshots(path, interval=0.05).start()
    try:
        assert not path.exists()
        snapshots.written()
        deadline = time.monotonic() + 30
        while not path.exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert path.exists()
    finally:
        snapshots.stop()
    assert snapshots.taken >= 2
