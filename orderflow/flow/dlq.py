"""Dead letters: list them without losing them, and move them back to the source queue."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from orderflow.aws import Aws
from orderflow.errors import AwsError, Conflict, NotFoundError, TimedOut
from orderflow.lambda_code.index import InvalidOrder, unwrap
from orderflow.provision.base import Context
from orderflow.provision.resources.queues import find_queue_url
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
        raise NotFoundError(f"Queue {name!r} does not exist in {aws.region}: run `orderflow up` first")
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
        # SQS counts the receive that reads the letter too: the receives before it are the attempts that failed
        receive_count=max(0, int(attributes.get("ApproximateReceiveCount", 0)) - 1),
        first_received=datetime.fromtimestamp(int(first) / 1000, timezone.utc).isoformat() if first else None,
        excerpt=body[:120],
    )


@dataclass(frozen=True)
class DeadLetters:
    """The letters read, and how many SQS counted (ApproximateNumberOfMessages, visible and in flight) when reading
    began: more counted than read means the limit, or letters held by another reader, hid some."""

    letters: list[DeadLetter]
    counted: int
    in_flight: int

    @property
    def unread(self) -> int:
        return max(0, self.counted - len(self.letters))

    def to_document(self, queue: str) -> dict[str, Any]:
        return {
            "ok": True,
            "queue": queue,
            "counted": self.counted,
            "inFlight": self.in_flight,
            "letters": [
                {
                    "messageId": lt.message_id,
                    "orderId": lt.order_id,
                    "receiveCount": lt.receive_count,
                    "firstReceived": lt.first_received,
                    "excerpt": lt.excerpt,
                }
                for lt in self.letters
            ],
        }


# A long poll asks every SQS server (a short poll only a sample, and can answer nothing while letters exist);
# 1 s keeps each empty answer short.
LONG_POLL_SECONDS = 1
READ_LIMIT_SECONDS = 20.0


def _counts(sqs: Any, url: str) -> tuple[int, int]:
    attributes = sqs.get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attributes.get("ApproximateNumberOfMessages", 0)), int(
        attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
    )


def show(aws: Aws, config: StackConfig, limit: int = 100, clock: Callable[[], float] = time.monotonic) -> DeadLetters:
    """Read up to `limit` dead letters and make them visible again at once: nothing is deleted or lost. Reads with
    long polls until it holds as many as SQS counts as visible (or the limit, or 20 s)."""
    sqs = aws.client("sqs")
    url = _queue_url(aws, config, config.dlq_name)
    visible, in_flight = _counts(sqs, url)
    held: dict[str, dict[str, Any]] = {}
    deadline = clock() + READ_LIMIT_SECONDS
    try:
        while len(held) < min(limit, visible) and clock() < deadline:
            batch = sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(10, limit - len(held)),
                VisibilityTimeout=HOLD_SECONDS,
                WaitTimeSeconds=LONG_POLL_SECONDS,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not batch:
                break  # a long poll found nothing visible: the count was stale
            for message in batch:
                held[message["MessageId"]] = message
    finally:
        messages = list(held.values())
        for start in range(0, len(messages), 10):
            sqs.change_message_visibility_batch(
                QueueUrl=url,
                Entries=[
                    {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0}
                    for i, m in enumerate(messages[start : start + 10])
                ],
            )
    return DeadLetters([_dead_letter(m) for m in held.values()], visible + in_flight, in_flight)


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


# A move task runs at up to 500 messages per second by default; a DLQ of 14 days of failures moves in minutes.
MOVE_TASK_LIMIT_SECONDS = 30 * 60.0
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")
CLOCK_SKEW_MS = 5_000


def _move_task(
    aws: Aws,
    config: StackConfig,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    limit: float = MOVE_TASK_LIMIT_SECONDS,
) -> RedriveResult:
    """SQS's own redrive: start a message move task and follow that task — not whichever one is listed first.
    ListMessageMoveTasks names a task by its TaskHandle only while it runs, so once ours has ended it is the most
    recent task started no earlier than ours."""
    sqs = aws.client("sqs")
    dlq_arn = aws.arns.queue(config.dlq_name)
    _queue_url(aws, config, config.dlq_name)
    running = [t for t in _move_tasks(sqs, dlq_arn) if t.get("Status") == "RUNNING"]
    if running:
        task = running[0]
        raise Conflict(
            f"A message move task is already running on {config.dlq_name} "
            f"({task.get('ApproximateNumberOfMessagesMoved', 0)} of "
            f"{task.get('ApproximateNumberOfMessagesToMove', '?')} moved): wait for it to finish, or cancel it with "
            f"`aws sqs cancel-message-move-task --task-handle {task.get('TaskHandle')}`"
        )
    started_ms = int(time.time() * 1000)
    handle = sqs.start_message_move_task(SourceArn=dlq_arn, DestinationArn=aws.arns.queue(config.queue_name))[
        "TaskHandle"
    ]
    deadline = clock() + limit
    while True:
        task = _our_task(_move_tasks(sqs, dlq_arn), handle, started_ms)
        if task is not None and task.get("Status") in TERMINAL:
            if task["Status"] != "COMPLETED":
                raise AwsError(
                    f"The message move task ended {task['Status']}: {task.get('FailureReason', 'no reason given')}; "
                    f"{task.get('ApproximateNumberOfMessagesMoved', 0)} message(s) were moved, the rest stay in the DLQ"
                )
            return RedriveResult(int(task.get("ApproximateNumberOfMessagesMoved", 0)), "SQS message move task")
        if clock() >= deadline:
            moved = task.get("ApproximateNumberOfMessagesMoved", 0) if task else 0
            raise TimedOut(
                f"The message move task is still running after {limit / 60:.0f} minutes ({moved} moved so far); it "
                f"goes on in SQS: follow it with `aws sqs list-message-move-tasks --source-arn {dlq_arn}`"
            )
        sleep(1.0)


def _move_tasks(sqs: Any, dlq_arn: str) -> list[dict[str, Any]]:
    # Most recent first; an empty list is an answer too (a task just started may not be listed yet).
    return sqs.list_message_move_tasks(SourceArn=dlq_arn, MaxResults=10).get("Results", [])


def _our_task(tasks: list[dict[str, Any]], handle: str, started_ms: int) -> dict[str, Any] | None:
    for task in tasks:
        if task.get("TaskHandle") == handle:
            return task
    # Once ended, a task is listed without its handle: ours is then a task started when we started it (give or take
    # a few seconds of clock difference with SQS). An older task (refused above while it ran) never matches.
    for task in tasks:
        if "TaskHandle" not in task and int(task.get("StartedTimestamp", 0)) >= started_ms - CLOCK_SKEW_MS:
            return task
    return None


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
            raise AwsError(
                f"Moved {moved} letter(s), then SQS refused one ({failure.get('Code')}: {failure.get('Message')}); "
                "the rest stay in the DLQ"
            )
