"""Lambda's metrics (namespace AWS/Lambda, dimension FunctionName), published as Lambda publishes them.

Sources: Lambda Developer Guide, "Types of metrics for Lambda functions": Invocations, Errors (invocations that
ended in a function error or timeout; a batch item failure is not one), Throttles, Duration (milliseconds, with
percentile statistics) and ConcurrentExecutions (instances processing events; meaningful as Maximum).

Recording an invocation only appends to a list; a background thread sends the datapoints once a second, so no
CloudWatch call is ever on an invocation's path.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from orderflow.local.runtime.environment.worker import FunctionSpec, Invocation

log = logging.getLogger("orderflow.local.runtime")

# PutMetricData takes at most 150 distinct values per datum and 1000 datums per call (CloudWatch API Reference,
# MetricDatum.Values and PutMetricData.MetricData).
MAX_VALUES_PER_DATUM = 150
MAX_DATUMS_PER_CALL = 1000


def put_datums(cloudwatch: Any, namespace: str, datums: list[dict[str, Any]]) -> int:
    """Send datums in as few PutMetricData calls as CloudWatch allows; returns how many calls it took."""
    calls = 0
    for start in range(0, len(datums), MAX_DATUMS_PER_CALL):
        cloudwatch.put_metric_data(Namespace=namespace, MetricData=datums[start : start + MAX_DATUMS_PER_CALL])
        calls += 1
    return calls


@dataclass
class _FunctionMinute:
    invocations: int = 0
    errors: int = 0
    throttles: int = 0
    durations: list[float] = field(default_factory=list)
    concurrency: list[float] = field(default_factory=list)


def _values_datums(
    name: str, dimensions: list[dict[str, str]], values: list[float], unit: str, now: datetime
) -> list[dict[str, Any]]:
    """Values as Values/Counts datums of at most 150 distinct values each (percentiles need every value)."""
    counted = sorted(Counter(round(v, 3) for v in values).items())
    return [
        {
            "MetricName": name,
            "Dimensions": dimensions,
            "Values": [v for v, _ in counted[start : start + MAX_VALUES_PER_DATUM]],
            "Counts": [float(c) for _, c in counted[start : start + MAX_VALUES_PER_DATUM]],
            "Unit": unit,
            "Timestamp": now,
        }
        for start in range(0, len(counted), MAX_VALUES_PER_DATUM)
    ]


def function_datums(function_name: str, minute: _FunctionMinute, now: datetime) -> list[dict[str, Any]]:
    """One function's datapoints since the last delivery, as PutMetricData's MetricData (pure)."""
    dimensions = [{"Name": "FunctionName", "Value": function_name}]
    counts = [
        ("Invocations", minute.invocations),
        ("Errors", minute.errors),
        # Invocation requests refused for concurrency: not counted in Invocations (Lambda counts them apart).
        ("Throttles", minute.throttles),
    ]
    datums: list[dict[str, Any]] = [
        {"MetricName": name, "Dimensions": dimensions, "Value": float(value), "Unit": "Count", "Timestamp": now}
        for name, value in counts
    ]
    datums += _values_datums("Duration", dimensions, minute.durations, "Milliseconds", now)
    datums += _values_datums("ConcurrentExecutions", dimensions, minute.concurrency, "Count", now)
    return datums


class LambdaMetrics:
    """Collects invocations and delivers their metrics in the background, with the Lambda service's own rights."""

    FLUSH_INTERVAL_SECONDS = 1.0

    def __init__(self, cloudwatch: Callable[[str], Any], interval: float = FLUSH_INTERVAL_SECONDS) -> None:
        self._cloudwatch = cloudwatch
        self._interval = interval
        self._lock = threading.Lock()
        self._pending: dict[tuple[str, str], _FunctionMinute] = {}
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._deliver, name="lambda-metrics", daemon=True)
        self._thread.start()

    def record(self, spec: FunctionSpec, invocation: Invocation, concurrent: int) -> None:
        with self._lock:
            minute = self._pending.setdefault((spec.region, spec.name), _FunctionMinute())
            minute.invocations += 1
            minute.errors += 0 if invocation.succeeded else 1
            minute.durations.append(invocation.duration_ms)
            minute.concurrency.append(float(concurrent))

    def record_throttle(self, spec: FunctionSpec) -> None:
        with self._lock:
            self._pending.setdefault((spec.region, spec.name), _FunctionMinute()).throttles += 1

    def _deliver(self) -> None:
        while not self._closed.wait(self._interval):
            try:
                self.flush()
            except Exception:  # keep delivering; this round's datapoints are lost, as a failed agent's would be
                log.exception("could not deliver Lambda metrics")

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        now = datetime.now(timezone.utc)
        by_region: dict[str, list[dict[str, Any]]] = {}
        for (region, name), minute in pending.items():
            by_region.setdefault(region, []).extend(function_datums(name, minute, now))
        for region, datums in by_region.items():
            put_datums(self._cloudwatch(region), "AWS/Lambda", datums)

    def close(self) -> None:
        """Deliver what is pending, then stop."""
        self._closed.set()
        self._thread.join(timeout=5)
        self.flush()
