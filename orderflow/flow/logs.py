"""The function's CloudWatch log events, and the handler's JSON lines parsed out of them."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from orderflow.aws import Aws, or_none
from orderflow.errors import ConfigError
from orderflow.lambda_code.index import LOG_EVENT, LOG_FIELDS
from orderflow.stack import StackConfig

_DURATION = re.compile(r"^(\d+)\s*([smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class LogEvent:
    event_id: str
    timestamp: int
    stream: str
    message: str

    def to_document(self) -> dict[str, Any]:
        return {
            "timestamp": self.timestamp,
            "stream": self.stream,
            "message": self.message,
            "record": record.to_document() if (record := self.handler_record) else None,
        }

    @property
    def handler_record(self) -> HandlerRecord | None:
        """The handler's per-record line, or None for any other line (START, END, REPORT, prints)."""
        return HandlerRecord.parse(self.message)


# The handler's JSON names -> HandlerRecord's attributes: built from the handler's own list, so they cannot drift.
_ATTRIBUTES = {name: re.sub(r"(?<!^)([A-Z])", r"_\1", name).lower() for name in LOG_FIELDS}


@dataclass(frozen=True)
class HandlerRecord:
    """The handler's log line for one SQS record, parsed once (lambda_code/index.py writes it)."""

    outcome: str = "?"
    order_id: str | None = None
    sqs_message_id: str | None = None
    sns_message_id: str | None = None
    attempt: int = 0  # SQS's ApproximateReceiveCount; 0 when unknown
    sent_at: int = 0  # SQS's SentTimestamp (ms); 0 when unknown
    reason: str | None = None
    request_id: str | None = None

    @classmethod
    def parse(cls, message: str) -> HandlerRecord | None:
        text = message.strip()
        if not text.startswith("{"):
            return None
        try:
            data = json.loads(text)
        except ValueError:
            return None
        if not isinstance(data, dict) or data.get("event") != LOG_EVENT:
            return None
        values = {_ATTRIBUTES[k]: v for k, v in data.items() if k in _ATTRIBUTES and v is not None}
        for number in ("attempt", "sent_at"):
            values[number] = _whole(values.get(number))
        for text_field in ("outcome", "order_id", "sqs_message_id", "sns_message_id", "reason", "request_id"):
            if text_field in values:
                values[text_field] = str(values[text_field])
        return cls(**values)

    @property
    def done(self) -> bool:
        """Written, or stale (an equal or newer version is stored): the record needs no retry."""
        return self.outcome in ("written", "stale")

    def to_document(self) -> dict[str, Any]:
        """The line as the handler wrote it."""
        return {"event": LOG_EVENT} | {
            name: getattr(self, attribute)
            for name, attribute in _ATTRIBUTES.items()
            if getattr(self, attribute) not in (None, 0)
        }


def _whole(value: Any) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return 0


# CloudWatch Logs keeps events for at most 10 years (PutRetentionPolicy's longest retention is 3653 days).
MAX_SINCE_SECONDS = 3653 * 86400


LOGS_KEEP = (MAX_SINCE_SECONDS, "the 3653 days CloudWatch Logs can keep")


def parse_since(text: str, limit: tuple[int, str] = LOGS_KEEP) -> int:
    """'10m' -> 600 seconds; '90s', '2h', '1d' likewise; at most `limit` (seconds, and what sets it): by default
    the 10 years CloudWatch Logs can keep."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ConfigError(f"--since {text!r} is not a duration like 30s, 10m, 2h or 1d")
    seconds = int(match.group(1)) * _SECONDS[match.group(2)]
    if seconds > limit[0]:
        raise ConfigError(f"--since {text!r} reaches further back than {limit[1]}")
    return seconds


def fetch_events(
    aws: Aws, config: StackConfig, start_ms: int, pattern: str | None = None, end_ms: int | None = None
) -> list[LogEvent]:
    """Every event of the function's log group from start_ms on (optionally matching a filter pattern), oldest
    first. A missing log group means no events."""
    kwargs: dict[str, Any] = {"logGroupName": config.log_group_name, "startTime": start_ms}
    if pattern:
        kwargs["filterPattern"] = pattern
    if end_ms is not None:
        kwargs["endTime"] = end_ms
    paginator = aws.client("logs").get_paginator("filter_log_events")
    pages = or_none(lambda: list(paginator.paginate(**kwargs))) or []  # no log group yet: no events
    events = [
        LogEvent(e["eventId"], e["timestamp"], e.get("logStreamName", ""), e["message"])
        for page in pages
        for e in page.get("events", [])
    ]
    return sorted(events, key=lambda e: (e.timestamp, e.event_id))


# The runtime (and Lambda) deliver an invocation's lines when it ends, so a slow invocation's lines can arrive after
# a fast one's newer lines: following re-reads this far back and de-duplicates by event id.
FOLLOW_LOOKBACK_MS = 30_000


def follow(
    aws: Aws, config: StackConfig, start_ms: int, sleep: Callable[[float], None] = time.sleep, interval: float = 1.0
) -> Iterator[list[LogEvent]]:
    """Batches of events never seen before, oldest first in each batch; the first batch is the history since
    start_ms. Runs until the caller stops iterating."""
    seen: dict[str, int] = {}
    while True:
        fresh = [e for e in fetch_events(aws, config, start_ms) if e.event_id not in seen]
        seen.update((e.event_id, e.timestamp) for e in fresh)
        yield fresh
        if fresh:
            start_ms = max(start_ms, fresh[-1].timestamp - FOLLOW_LOOKBACK_MS)
            # Forget what can no longer be read again, so a long follow does not grow without bound.
            seen = {event_id: ts for event_id, ts in seen.items() if ts >= start_ms}
        sleep(interval)


def quoted(term: str) -> str:
    """A CloudWatch filter pattern matching the exact term."""
    return '"' + term.replace('"', '\\"') + '"'


# Characters json.dumps never escapes: a run of them appears unchanged in a JSON line that names the term.
_NEVER_ESCAPED = re.compile(r"[A-Za-z0-9_-]+")


def names(message: str, term: str) -> bool:
    """The line names the term: raw (a plain print) or as json.dumps writes it (the handler's lines, where a
    non-ASCII, control or backslash character is escaped: `café` is `caf\\u00e9` there)."""
    encoded = json.dumps(term)[1:-1]
    return term in message or encoded in message or json.dumps(term, ensure_ascii=False)[1:-1] in message


def fetch_naming(aws: Aws, config: StackConfig, start_ms: int, term: str) -> list[LogEvent]:
    """Every event from start_ms on that names the term, oldest first. The filter pattern only narrows the read
    to the term's longest run of never-escaped characters (the term itself would miss the escaped form a JSON
    line holds); which lines name it is decided here."""
    runs = _NEVER_ESCAPED.findall(term)
    pattern = quoted(max(runs, key=len)) if runs else None
    return [e for e in fetch_events(aws, config, start_ms, pattern=pattern) if names(e.message, term)]


def render(event: LogEvent) -> str:
    """One readable line: handler JSON lines become 'outcome orderId (reason)'."""
    record = event.handler_record
    if record is None:
        return event.message.rstrip()
    parts = [record.outcome.upper(), record.order_id or "<no orderId>", f"sqs={record.sqs_message_id}"]
    if record.sns_message_id:
        parts.append(f"sns={record.sns_message_id}")
    if record.attempt:
        parts.append(f"attempt={record.attempt}")
    if record.reason:
        parts.append(f"— {record.reason}")
    return " ".join(parts)
