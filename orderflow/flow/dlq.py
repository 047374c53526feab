"""Dead letters: list them without losing them, and move them back to the source queue."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from orderflow.aws import Aws
from orderflow.errors import OrderflowError
from orderflow.lambda_code.index import InvalidOrder, unwrap
from orderflow.provision.base import Context
from orderflow.provision.queues import find_queue_url
from orderflow.stack import StackConfig

# Long enough to read and send a batch; short enough that an interrupted command returns letters soon.
HOLD_SECONDS = 30


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    order_id: str | None
    receive_count: int
    first_received: str | None
    excerpt: str


def _queue_url(aws: Aws, config: StackConfig, name: str) -> str:
    url = find_queue_url(Context(aws=aws, config=config), name)
    if url is None:
        raise OrderflowError(f"Queue {name!r} does not exist in {aws.region}: run `orderflow up` first")
    return url


def order_id_of(body: str) -> str | None:
    try:
        payload, _ = unwrap(body)
    except InvalidOrder:
        return None
    order_id = payload.get("orderId") if isinstance(payload, dict) else None
    return order_id if isinstance(order_id, str) else None


def _dead_letter(message: dict[str, Any]) -> DeadLetter:
    attributes = message.get("Attributes", {})
    first = attributes.get("ApproximateFirstReceiveTimestamp")
    body = message.get("Body", "")
    return DeadLetter(
        message_id=message["MessageId"],
        order_id=order_id_of(body),
        receive_count=int(attributes.get("ApproximateReceiveCount", 0)),
        first_received=datetime.fromtimestamp(int(first) / 1000, timezone.utc).isoformat() if first else None,
        excerpt=body[:120],
    )


def show(aws: Aws, config: StackConfig, limit: int = 100) -> list[DeadLetter]:
    """Read up to `limit` dead letters and make them visible again at once: nothing is deleted or lost."""
    sqs = aws.client("sqs")
    url = _queue_url(aws, config, config.dlq_name)
    held: list[dict[str, Any]] = []
    try:
        while len(held) < limit:
            batch = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(10, limit - len(held)),
                VisibilityTimeout=HOLD_SECONDS,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                break
            held += batch
    finally:
        for start in range(0, len(held), 10):
            sqs.change_message_visibility_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for i, m in enumerate(held[start : start + 10])
                ],
            )
    return [_dead_letter(m) for m in held]


@dataclass(frozen=True)
class RedriveResult:
    moved: int
    method: str


def redrive(aws: Aws, config: StackConfig) -> RedriveResult:
    """Move every dead letter back to the source queue.

    On AWS this is SQS's own message move task. Other endpoints (moto has no move task) get a loop that sends
    each letter to the source queue and deletes it from the DLQ only after the send succeeded.
    """
    if aws.endpoint_url is None:
        return _move_task(aws, config)
    return _send_then_delete(aws, config)


def _move_task(aws: Aws, config: StackConfig) -> RedriveResult:
    sqs = aws.client("sqs")
    dlq_arn = aws.arns.queue(config.dlq_name)
    _queue_url(aws, config, config.dlq_name)
    sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=aws.arns.queue(config.queue_name))
    while True:
        [task] = sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=1)["Results"]
        if task["Status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            if task["Status"] != "COMPLETED":
                raise OrderflowError(f"The message move task ended {task['Status']}: {task.get('FailureReason', '')}")
            return RedriveResult(int(task.get("ApproximateNumberOfMessagesMoved", 0)), "SQS message move task")
        time.sleep(1)


def _send_then_delete(aws: Aws, config: StackConfig) -> RedriveResult:
    sqs = aws.client("sqs")
    dlq_url = _queue_url(aws, config, config.dlq_name)
    source_url = _queue_url(aws, config, config.queue_name)
    moved = 0
    while True:
        batch = sqs.receive_message(
            QueueUrl=dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=HOLD_SECONDS, MessageAttributeNames=["All"]
        ).get("Messages", [])
        if not batch:
            return RedriveResult(moved, "receive, send, then delete")
        entries = []
        for i, message in enumerate(batch):
            entry: dict[str, Any] = {"Id": str(i), "MessageBody": message["Body"]}
            if message.get("MessageAttributes"):
                entry["MessageAttributes"] = message["MessageAttributes"]
            entries.append(entry)
        sent = sqs.send_message_batch(QueueUrl=source_url, Entries=entries)
        sent_ids = {s["Id"] for s in sent.get("Successful", [])}
        if sent_ids:
            sqs.delete_message_batch(
                QueueUrl=dlq_url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]}
                    for i, m in enumerate(batch)
                    if str(i) in sent_ids
                ],
            )
            moved += len(sent_ids)
        if sent.get("Failed"):
            failure = sent["Failed"][0]
            raise OrderflowError(
                f"Moved {moved} letter(s), then SQS refused one ({failure.get('Code')}: {failure.get('Message')}); "
                "the rest stay in the DLQ"
            )
