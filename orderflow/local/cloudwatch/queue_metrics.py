"""The metrics SQS publishes to CloudWatch (namespace AWS/SQS, dimension QueueName), once a minute per queue.

Sources: SQS Developer Guide, "Available CloudWatch metrics for Amazon SQS". The counts (NumberOfMessagesSent, …)
are kept by a patch on moto's SQS backend (patches/moto.py, _count_queue_messages); the approximate depths and the age
of the oldest message are read from the queue itself.
"""

from __future__ import annotations

import threading
from collections import Counter
from datetime import datetime
from typing import Any

COUNTED = ("NumberOfMessagesSent", "NumberOfMessagesReceived", "NumberOfMessagesDeleted", "NumberOfEmptyReceives")


class QueueCounters:
    """Per-queue counts since they were last taken, by queue ARN. Thread-safe: SQS calls count from many threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, Counter[str]] = {}

    def add(self, queue_arn: str, metric: str, amount: int = 1) -> None:
        with self._lock:
            self._counts.setdefault(queue_arn, Counter())[metric] += amount

    def take(self) -> dict[str, Counter[str]]:
        """The counts since the last take, and start counting afresh."""
        with self._lock:
            counts, self._counts = self._counts, {}
        return counts


COUNTERS = QueueCounters()


def queue_datums(
    name: str,
    visible: int,
    not_visible: int,
    delayed: int,
    oldest_sent_ms: int | None,
    counts: Counter[str],
    now: datetime,
) -> list[dict[str, Any]]:
    """One queue's minute of AWS/SQS metrics, as PutMetricData's MetricData (pure)."""
    age = 0 if oldest_sent_ms is None else max(0, int(now.timestamp() - oldest_sent_ms / 1000))
    values: list[tuple[str, float, str]] = [
        ("ApproximateNumberOfMessagesVisible", visible, "Count"),
        ("ApproximateNumberOfMessagesNotVisible", not_visible, "Count"),
        ("ApproximateNumberOfMessagesDelayed", delayed, "Count"),
        ("ApproximateAgeOfOldestMessage", age, "Seconds"),
        *((metric, counts.get(metric, 0), "Count") for metric in COUNTED),
    ]
    dimensions = [{"Name": "QueueName", "Value": name}]
    return [
        {"MetricName": metric, "Dimensions": dimensions, "Value": float(value), "Unit": unit, "Timestamp": now}
        for metric, value, unit in values
    ]


def sample_queues(now: datetime) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Every queue of the embedded AWS, by (account, region): its metric data for the minute ending `now`."""
    from moto.sqs.models import sqs_backends

    counts = COUNTERS.take()
    found: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for account, regions in list(sqs_backends.items()):
        for region, backend in list(regions.items()):
            for queue in list(backend.queues.values()):
                messages = list(queue._messages)  # a snapshot: the pollers change the list meanwhile
                oldest = min((m.sent_timestamp for m in messages if m.sent_timestamp), default=None)
                found.setdefault((account, region), []).extend(
                    queue_datums(
                        queue.name,
                        visible=sum(1 for m in messages if m.visible and not m.delayed),
                        not_visible=sum(1 for m in messages if not m.visible),
                        delayed=sum(1 for m in messages if m.delayed),
                        oldest_sent_ms=oldest,
                        counts=counts.get(queue.queue_arn, Counter()),
                        now=now,
                    )
                )
    return found
