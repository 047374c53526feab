"""One snapshot of a running stack: the numbers `orderflow watch` shows, read the same way on AWS and embedded.

Queue depths from SQS (GetQueueAttributes); the age of the oldest message, invocations, errors, throttles, the
peak of concurrent executions and duration percentiles from CloudWatch (GetMetricData); orders written per interval
from the handler's log lines;
the DLQ alarm's state from DescribeAlarms.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from orderflow.aws import Aws
from orderflow.errors import ConfigError, NotFoundError
from orderflow.flow.logs import fetch_events
from orderflow.provision.base import Context
from orderflow.provision.resources.alarm import metric_query
from orderflow.provision.resources.queues import find_queue
from orderflow.stack import StackConfig

# CloudWatch keeps one-minute datapoints for 15 days (CloudWatch User Guide, "Metrics retention").
MAX_WINDOW_SECONDS = 15 * 86400
SPARK = "▁▂▃▄▅▆▇█"


@dataclass(frozen=True)
class Snapshot:
    window_s: int
    interval_s: int
    queue_visible: int
    queue_in_flight: int
    queue_oldest_age_s: float | None
    dlq_visible: int
    invocations: int
    errors: int
    throttles: int
    duration_p50_ms: float | None
    duration_p95_ms: float | None
    alarm_name: str
    alarm_state: str
    # Orders the handler wrote in each interval of the window, oldest first.
    written: list[int] = field(default_factory=list)
    # The most of the function's instances running at once in the window (ConcurrentExecutions, Maximum).
    peak_concurrency: int | None = None

    def to_document(self) -> dict[str, Any]:
        return {
            "ok": True,
            "queue": {
                "visible": self.queue_visible,
                "in_flight": self.queue_in_flight,
                "oldest_age_s": self.queue_oldest_age_s,
            },
            "dlq": {"visible": self.dlq_visible},
            "function": {
                "invocations": self.invocations,
                "errors": self.errors,
                "throttles": self.throttles,
                "peak_concurrency": self.peak_concurrency,
                "duration_p50_ms": self.duration_p50_ms,
                "duration_p95_ms": self.duration_p95_ms,
            },
            "alarm": {"name": self.alarm_name, "state": self.alarm_state},
            "written": {"interval_s": self.interval_s, "per_interval": self.written, "total": sum(self.written)},
            "window_s": self.window_s,
        }


# What `watch` reads: CloudWatch's one-minute datapoints, which it keeps for 15 days.
WINDOW_LIMIT = (MAX_WINDOW_SECONDS, "the 15 days CloudWatch keeps one-minute datapoints (what watch counts from)")


def check_window(window_s: int, interval_s: float, interval_given: bool = True) -> None:
    if window_s > MAX_WINDOW_SECONDS:
        raise ConfigError(f"--since reaches further back than {WINDOW_LIMIT[1]}")
    if interval_s > window_s:
        whose = f"--interval {interval_s:g}" if interval_given else f"the {interval_s:g} s interval (the default)"
        raise ConfigError(
            f"--since {window_s}s is shorter than {whose} that divides it into counts: give a longer --since"
            + ("" if interval_given else " or a shorter --interval")
        )


def sparkline(counts: list[int]) -> str:
    """One character per count, scaled to the largest (all blank-low when nothing happened)."""
    top = max(counts, default=0)
    return "".join(
        SPARK[0] if top == 0 else SPARK[min(len(SPARK) - 1, round(c / top * (len(SPARK) - 1)))] for c in counts
    )


def _depths(ctx: Context, name: str) -> tuple[int, int]:
    found = find_queue(ctx, name)
    if found is None:
        raise NotFoundError(f"Queue {name!r} does not exist in {ctx.aws.region}: run `orderflow up` first")
    attributes = found[1]
    return int(attributes.get("ApproximateNumberOfMessages", 0)), int(
        attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
    )


def _metrics(aws: Aws, config: StackConfig, window_s: int, now: datetime) -> dict[str, list[float]]:
    """Each query's values over the window, newest first. One period spans the whole window (a multiple of 60 s,
    as CloudWatch wants), so a count is one Sum and a percentile is over every invocation in the window."""
    period = 60 * math.ceil(window_s / 60)
    function = ("FunctionName", config.function_name)
    queue = ("QueueName", config.queue_name)
    queries = [
        metric_query("invocations", "AWS/Lambda", "Invocations", function, "Sum", period),
        metric_query("errors", "AWS/Lambda", "Errors", function, "Sum", period),
        metric_query("throttles", "AWS/Lambda", "Throttles", function, "Sum", period),
        metric_query("concurrency", "AWS/Lambda", "ConcurrentExecutions", function, "Maximum", period),
        metric_query("p50", "AWS/Lambda", "Duration", function, "p50", period),
        metric_query("p95", "AWS/Lambda", "Duration", function, "p95", period),
        # SQS publishes the age once a minute: the newest one-minute value is the current age.
        metric_query("age", "AWS/SQS", "ApproximateAgeOfOldestMessage", queue, "Maximum", 60),
    ]
    found: dict[str, list[float]] = {}
    paginator = aws.client("cloudwatch").get_paginator("get_metric_data")
    for page in paginator.paginate(
        MetricDataQueries=queries,
        StartTime=now - timedelta(seconds=window_s),
        EndTime=now,
        ScanBy="TimestampDescending",
    ):
        for result in page["MetricDataResults"]:
            found.setdefault(result["Id"], []).extend(v for v in result.get("Values", []) if v is not None)
    return found


def _written(aws: Aws, config: StackConfig, window_s: int, interval_s: int, now: datetime) -> list[int]:
    end_ms = int(now.timestamp() * 1000)
    start_ms = end_ms - window_s * 1000
    buckets = [0] * max(1, math.ceil(window_s / interval_s))
    for event in fetch_events(aws, config, start_ms, pattern='"written"', end_ms=end_ms):
        record = event.handler_record
        if record and record.outcome == "written":
            index = min(len(buckets) - 1, (event.timestamp - start_ms) // (interval_s * 1000))
            buckets[max(0, index)] += 1
    return buckets


def _alarm_state(aws: Aws, config: StackConfig) -> str:
    alarms = aws.client("cloudwatch").describe_alarms(AlarmNames=[config.dlq_alarm_name])["MetricAlarms"]
    return alarms[0]["StateValue"] if alarms else "missing"


def snapshot(aws: Aws, config: StackConfig, window_s: int, interval_s: int, now: datetime | None = None) -> Snapshot:
    check_window(window_s, interval_s)
    now = now or datetime.now(timezone.utc)
    ctx = Context(aws=aws, config=config)
    visible, in_flight = _depths(ctx, config.queue_name)
    dlq_visible, _ = _depths(ctx, config.dlq_name)
    metrics = _metrics(aws, config, window_s, now)
    return Snapshot(
        window_s=window_s,
        interval_s=interval_s,
        queue_visible=visible,
        queue_in_flight=in_flight,
        # No message, no age (the newest minute's datapoint may still count one that was just processed).
        queue_oldest_age_s=0.0 if visible + in_flight == 0 else (metrics.get("age") or [None])[0],
        dlq_visible=dlq_visible,
        invocations=int(sum(metrics.get("invocations", []))),
        errors=int(sum(metrics.get("errors", []))),
        throttles=int(sum(metrics.get("throttles", []))),
        duration_p50_ms=max(metrics["p50"]) if metrics.get("p50") else None,
        duration_p95_ms=max(metrics["p95"]) if metrics.get("p95") else None,
        alarm_name=config.dlq_alarm_name,
        alarm_state=_alarm_state(aws, config),
        written=_written(aws, config, window_s, interval_s, now),
        peak_concurrency=int(max(metrics["concurrency"])) if metrics.get("concurrency") else None,
    )
