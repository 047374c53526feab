"""The story of one order, oldest first: published, each delivery attempt, the write, the move to the DLQ.

Everything is read back from what AWS keeps, so the same trace works on AWS and embedded: the handler's log line
per record (orderId, SQS and SNS message ids, receive count, request id, outcome, the time SQS received the
message), Lambda's START and REPORT lines of each invocation (start and duration), the publish journal (when
`publish-test` sent it), the table's item, and the DLQ. A move to the DLQ happens inside SQS and leaves no
timestamp anywhere: its time is estimated (the last attempt's end plus the visibility timeout) and marked so.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from orderflow.aws import Aws
from orderflow.errors import ConfigError, NotFoundError
from orderflow.flow import dlq as dlq_flow
from orderflow.flow.logs import HandlerRecord, LogEvent, fetch_naming
from orderflow.flow.publish import recall
from orderflow.flow.verify import stored_order
from orderflow.provision.base import Context
from orderflow.provision.resources.queues import find_queue
from orderflow.stack import StackConfig

Hop = str  # "sns" | "sqs" | "lambda" | "dynamodb" | "dlq"
_REPORT_DURATION = re.compile(r"Duration: ([\d.]+) ms")
FAILED = ("invalid", "error")


@dataclass(frozen=True)
class TraceEvent:
    at_ms: int
    hop: Hop
    what: str
    details: dict[str, Any] = field(default_factory=dict)
    duration_ms: float | None = None
    estimated: bool = False

    def to_document(self) -> dict[str, Any]:
        at = datetime.fromtimestamp(self.at_ms / 1000, timezone.utc).isoformat(timespec="milliseconds")
        document: dict[str, Any] = {"at": at, "hop": self.hop, "what": self.what, **self.details}
        if self.duration_ms is not None:
            document["duration_ms"] = round(self.duration_ms, 2)
        if self.estimated:
            document["estimated"] = True
        return document


@dataclass(frozen=True)
class Trace:
    order_id: str | None
    message_id: str | None
    events: list[TraceEvent]
    stored: dict[str, Any] | None

    @property
    def found(self) -> bool:
        return bool(self.events)

    def to_document(self) -> dict[str, Any]:
        return {
            "ok": self.found,
            **({} if self.found else {"code": NotFoundError.code}),
            "orderId": self.order_id,
            "messageId": self.message_id,
            "events": [e.to_document() for e in self.events],
            "stored": self.stored,
        }


@dataclass(frozen=True)
class Attempt:
    """One handler log line for the order, with the invocation it ran in."""

    record: HandlerRecord
    logged_ms: int
    started_ms: int
    duration_ms: float | None


def _matches(record: HandlerRecord, order_id: str | None, message_id: str | None) -> bool:
    if order_id is not None and record.order_id == order_id:
        return True
    return message_id is not None and message_id in (record.sqs_message_id, record.sns_message_id)


def _invocation(aws: Aws, config: StackConfig, request_id: str, around_ms: int) -> tuple[int, float | None]:
    """(start, duration) of an invocation, from its START and REPORT lines."""
    started, duration = around_ms, None
    for event in fetch_naming(aws, config, around_ms - 15 * 60_000, request_id):
        if event.message.startswith("START RequestId:"):
            started = event.timestamp
        elif event.message.startswith("REPORT RequestId:") and (found := _REPORT_DURATION.search(event.message)):
            duration = float(found.group(1))
    return started, duration


def attempts(
    aws: Aws, config: StackConfig, order_id: str | None, message_id: str | None, since_ms: int
) -> list[Attempt]:
    term = order_id if order_id is not None else message_id
    assert term is not None
    lines: list[tuple[LogEvent, HandlerRecord]] = [
        (e, record)
        for e in fetch_naming(aws, config, since_ms, term)
        if (record := e.handler_record) and _matches(record, order_id, message_id)
    ]
    found = []
    for event, record in lines:
        started, duration = (
            _invocation(aws, config, record.request_id, event.timestamp)
            if record.request_id
            else (event.timestamp, None)
        )
        found.append(Attempt(record, event.timestamp, started, duration))
    return sorted(found, key=lambda a: (a.started_ms, a.logged_ms))


def timeline(
    attempts_found: list[Attempt],
    published: tuple[str, int] | None,
    dead_letter: dlq_flow.DeadLetter | None,
    visibility_timeout_s: int,
    dlq_name: str,
    max_receive_count: int,
) -> list[TraceEvent]:
    """The events, oldest first (pure: every input already read). A receive the handler never saw (its count
    skipped, or missing before the move to the DLQ) was received but never invoked: shown as throttled, inferred."""
    events: list[TraceEvent] = []
    if published is not None:
        events.append(TraceEvent(published[1], "sns", "published", {"snsMessageId": published[0]}))
    seen_sqs: dict[str | None, int] = {}  # message id -> the last receive count the handler logged
    previous: Attempt | None = None
    for attempt in attempts_found:
        record = attempt.record
        if previous is not None and _came_back(previous, record, max_receive_count):
            events += _redriven(
                previous, attempt, attempt.record.sqs_message_id not in seen_sqs, visibility_timeout_s, dlq_name
            )
        if record.sqs_message_id not in seen_sqs:
            events += _queued(attempt, first=published is None and not events)
        last = seen_sqs.get(record.sqs_message_id, 0)
        missing = range(last + 1, record.attempt) if record.attempt > last else range(1, record.attempt)
        events += [
            _throttled(
                n, record.sqs_message_id, attempt.started_ms - (record.attempt - n) * visibility_timeout_s * 1000
            )
            for n in missing
        ]
        seen_sqs[record.sqs_message_id] = record.attempt
        events += _attempted(attempt)
        previous = attempt
    if dead_letter is not None:
        events += _dead_lettered(previous, published, dead_letter, visibility_timeout_s, dlq_name, max_receive_count)
    return sorted(events, key=lambda e: e.at_ms)


def _throttled(receive: int, sqs_message_id: str | None, at_ms: int) -> TraceEvent:
    details = {"sqsMessageId": sqs_message_id, "receiveCount": receive, "outcome": "throttled", "inferred": True}
    return TraceEvent(at_ms, "lambda", f"attempt {receive}: throttled (received, never invoked)", details, None, True)


def _dead_lettered(
    last: Attempt | None,
    published: tuple[str, int] | None,
    letter: dlq_flow.DeadLetter,
    visibility_timeout_s: int,
    dlq_name: str,
    max_receive_count: int,
) -> list[TraceEvent]:
    """The move to the DLQ, after the receives the handler never saw (throttled) when it saw fewer than allowed."""
    if last is None and published is None:
        return []
    logged = last.record.attempt if last is not None else 0
    ended = last.started_ms + int(last.duration_ms or 0) if last is not None else published[1]  # type: ignore[index]
    step = visibility_timeout_s * 1000
    throttled = [
        _throttled(n, letter.message_id, ended + (n - logged - (0 if last else 1)) * step)
        for n in range(logged + 1, max_receive_count + 1)
    ]
    details: dict[str, Any] = {"queue": dlq_name, "afterReceives": max(logged, max_receive_count) or None}
    details["sqsMessageId"] = letter.message_id
    moved_at = (throttled[-1].at_ms if throttled else ended) + step
    return [*throttled, TraceEvent(moved_at, "dlq", f"moved to {dlq_name}", details, estimated=True)]


def _came_back(previous: Attempt, record: HandlerRecord, max_receive_count: int) -> bool:
    """The last allowed receive failed and the order came back from the start: it went to the DLQ and was
    redriven since (the same order published again after a success is not mistaken for one)."""
    last = previous.record
    return last.outcome in FAILED and last.attempt >= max_receive_count > 0 and record.attempt == 1


def _redriven(
    previous: Attempt, attempt: Attempt, new_message: bool, visibility_timeout_s: int, dlq_name: str
) -> list[TraceEvent]:
    """The move to the DLQ and the redrive. A redrive that sends the letter anew (a new message id) stamps when;
    otherwise the new attempt bounds it."""
    sent_anew = attempt.record.sent_at if new_message else 0
    redriven_at = sent_anew or attempt.started_ms
    moved = _moved(previous, visibility_timeout_s, dlq_name)
    return [
        replace(moved, at_ms=min(moved.at_ms, redriven_at)),
        TraceEvent(redriven_at, "sqs", "redriven to the queue", {}, estimated=not sent_anew),
    ]


def _queued(attempt: Attempt, first: bool) -> list[TraceEvent]:
    """A message's arrival in the queue; `first` with no publish recorded: its publish too, from the handler's line."""
    record = attempt.record
    sent = record.sent_at or attempt.started_ms
    events = []
    if first and record.sns_message_id:
        details = {"snsMessageId": record.sns_message_id}
        events.append(TraceEvent(sent, "sns", "published", details, estimated=not record.sent_at))
    return [*events, TraceEvent(sent, "sqs", "queued", {"sqsMessageId": record.sqs_message_id})]


def _attempted(attempt: Attempt) -> list[TraceEvent]:
    """One invocation of the order, and its write when it wrote."""
    record = attempt.record
    details = {
        "sqsMessageId": record.sqs_message_id,
        "receiveCount": record.attempt or None,
        "requestId": record.request_id,
        "outcome": record.outcome,
    }
    if record.reason:
        details["reason"] = record.reason
    what = f"attempt {record.attempt or '?'}: {record.outcome}"
    events = [TraceEvent(attempt.started_ms, "lambda", what, details, attempt.duration_ms)]
    if record.done:
        written = "written" if record.outcome == "written" else "stale: an equal or newer version is stored"
        events.append(TraceEvent(attempt.logged_ms, "dynamodb", written, {}))
    return events


def _moved(
    last: Attempt, visibility_timeout_s: int, dlq_name: str, letter: dlq_flow.DeadLetter | None = None
) -> TraceEvent:
    ended = last.started_ms + int(last.duration_ms or 0)
    details: dict[str, Any] = {"queue": dlq_name, "afterReceives": last.record.attempt or None}
    if letter is not None:
        details["sqsMessageId"] = letter.message_id
    return TraceEvent(ended + visibility_timeout_s * 1000, "dlq", f"moved to {dlq_name}", details, estimated=True)


def trace(aws: Aws, config: StackConfig, order_id: str | None, message_id: str | None, since_ms: int) -> Trace:
    if (order_id is None) == (message_id is None):
        raise ConfigError("trace needs an ORDER_ID or --message-id, not both")
    found = attempts(aws, config, order_id, message_id, since_ms)
    if order_id is None:
        order_id = next((a.record.order_id for a in found if a.record.order_id), None)
    journal = {p.order_id: p for p in recall(aws, config)}
    published = journal.get(order_id) if order_id else None
    if published is None and message_id is not None:
        published = next((p for p in journal.values() if p.message_id == message_id), None)
    dead_letter = None
    # Failed, or published but never invoked (throttled every time): look for it in the DLQ.
    if (found and found[-1].record.outcome in FAILED) or (not found and published is not None):
        sqs_ids = {a.record.sqs_message_id for a in found}
        letters = dlq_flow.show(aws, config).letters
        dead_letter = next(
            (x for x in letters if x.message_id in sqs_ids or (order_id and not found and x.order_id == order_id)),
            None,
        )
    queue = find_queue(Context(aws=aws, config=config), config.queue_name)
    attributes = queue[1] if queue else {}
    redrive = json.loads(attributes.get("RedrivePolicy") or "{}")
    events = timeline(
        found,
        (published.message_id, published.published_ms) if published else None,
        dead_letter,
        int(attributes.get("VisibilityTimeout", config.settings.visibility_timeout)),
        config.dlq_name,
        int(redrive.get("maxReceiveCount", config.settings.max_receive_count)),
    )
    stored = stored_order(aws, config, order_id) if order_id and events else None
    return Trace(order_id, message_id, events, stored)
