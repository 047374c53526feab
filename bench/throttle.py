"""Benchmark 6: Lambda's concurrency trap and the SQS poller's scaling, on the embedded AWS.

1. The trap: N orders (2,000) into a stack whose function has reserved concurrency 2, and the same into a stack whose
   trigger has maximum concurrency 2 instead — dead letters (AWS: some vs none), throttles and time to drain, side by
   side in one run. Function timeout 1 s and visibility timeout 6 s (the least `up` allows) keep the run short;
   maxReceiveCount is the guide's 3.
2. Scale: M orders (10,000) into a stack with no limit while the poller scales by AWS's rule (5 batches, +300 a
   minute while messages wait), with the minute shortened by --time-scale; the drain time against the rule's ideal
   for the same arrivals (every batch as fast as the measured median), with and without this machine's capacity.

    python bench/throttle.py [--quick] [--orders N] [--scale-orders M] [--time-scale F]
"""

from __future__ import annotations

import argparse
import threading
import time
from datetime import datetime, timedelta, timezone

from common import depth, table  # also puts the project on sys.path

from orderflow.aws import connect
from orderflow.flow.publish import publish_orders, sample_order
from orderflow.local.server.embedded import EmbeddedAws
from orderflow.local.server.state import LOCAL_CREDENTIALS
from orderflow.provision import operations
from orderflow.provision.base import Context
from orderflow.stack import StackConfig, StackSettings

REGION = "us-east-1"
SHORT = {"function_timeout": 1, "visibility_timeout": 6}


def stored(aws, config: StackConfig) -> int:
    pages = aws.client("dynamodb").get_paginator("scan").paginate(TableName=config.table_name, Select="COUNT")
    return sum(page["Count"] for page in pages)


def lambda_metric(aws, config: StackConfig, name: str, statistic: str) -> float:
    now = datetime.now(timezone.utc)
    points = aws.client("cloudwatch").get_metric_statistics(
        Namespace="AWS/Lambda",
        MetricName=name,
        Dimensions=[{"Name": "FunctionName", "Value": config.function_name}],
        StartTime=now - timedelta(hours=1),
        EndTime=now + timedelta(minutes=1),
        Period=3600,
        **({"ExtendedStatistics": [statistic]} if statistic.startswith("p") else {"Statistics": [statistic]}),
    )["Datapoints"]
    if not points:
        return 0.0
    values = [p["ExtendedStatistics"][statistic] if statistic.startswith("p") else p[statistic] for p in points]
    return max(values) if statistic in ("Maximum",) or statistic.startswith("p") else sum(values)


def trap(embedded: EmbeddedAws, aws, count: int) -> tuple[list[list[object]], bool]:
    reserved = StackConfig("reserved", StackSettings(**SHORT))
    capped = StackConfig("capped", StackSettings(**SHORT, max_concurrency=2))
    rows, honest = [], True
    for config, how in ((reserved, "reserved concurrency 2"), (capped, "maximum concurrency 2")):
        operations.converge(Context(aws=aws, config=config))
        if config is reserved:
            aws.client("lambda").put_function_concurrency(
                FunctionName=config.function_name, ReservedConcurrentExecutions=2
            )
        started = time.monotonic()
        publish_orders(aws, config, [sample_order() for _ in range(count)])
        seconds = drained(aws, config, started, limit=600)
        embedded.runtime.metrics.flush()
        dead, written = depth(aws, config.dlq_name), stored(aws, config)
        throttles = int(lambda_metric(aws, config, "Throttles", "Sum"))
        honest &= dead + written == count
        rows.append([how, count, written, dead, count - written - dead, throttles, f"{seconds:.1f}"])
    return rows, honest


def drained(aws, config: StackConfig, started: float, limit: float) -> float:
    """Seconds from `started` until the queue holds no message (visible or in flight)."""
    while depth(aws, config.queue_name) and time.monotonic() - started < limit:
        time.sleep(0.25)
    return time.monotonic() - started


def ideal_seconds(
    arrivals: float, count: int, batch_seconds: float, minute: float, capacity: int | None, batch_size: int = 10
) -> float:
    """How long the scaling rule takes to process `count` messages arriving evenly over `arrivals` seconds, if every
    batch took `batch_seconds`: five batches, 300 more each minute with messages waiting, at most 1,000 (or
    `capacity`)."""
    step = min(0.01, minute / 100)
    t = arrived = done = 0.0
    batches, window, waited = 5, 0.0, False
    while done < count - 1e-6:
        arrived = count if t >= arrivals else count * t / arrivals
        done += min(arrived - done, min(batches, capacity or batches) * batch_size * step / batch_seconds)
        waited = waited or arrived - done > 0
        t += step
        if t - window >= minute:
            batches, window, waited = (min(1000, batches + 300) if waited else 5), t, False
    return t


def scale(embedded: EmbeddedAws, aws, count: int, time_scale: float) -> tuple[list[list[object]], dict[str, float]]:
    """Orders published as fast as one client can while the trigger drains them: the backlog that builds makes the
    poller scale. (Publishing into a stopped trigger first would measure moto instead: its SendMessage counts the
    whole queue each time.)"""
    config = StackConfig("scale")
    operations.converge(Context(aws=aws, config=config))
    lam = aws.client("lambda")
    uuid = lam.list_event_source_mappings(FunctionName=config.function_name)["EventSourceMappings"][0]["UUID"]
    samples: list[tuple[int, int]] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.wait(0.25):
            found = embedded.runtime.batches(uuid)
            if found:
                samples.append(found)

    threading.Thread(target=sample, daemon=True).start()
    started = time.monotonic()
    publish_orders(aws, config, [sample_order() for _ in range(count)])
    published = time.monotonic() - started
    seconds = drained(aws, config, started, limit=1800)
    stop.set()
    embedded.runtime.metrics.flush()
    p50_ms = lambda_metric(aws, config, "Duration", "p50")
    written, dead = stored(aws, config), depth(aws, config.dlq_name)
    capacity = embedded.runtime.scaling.capacity
    minute = 60 * time_scale
    batch_seconds = max(p50_ms / 1000, 0.001)
    rule = ideal_seconds(published, count, batch_seconds, minute, None)
    machine = ideal_seconds(published, count, batch_seconds, minute, capacity)
    peak_rule, peak_pollers = max((s[0] for s in samples), default=0), max((s[1] for s in samples), default=0)
    times = [f"{published:.1f}", f"{seconds:.1f}", f"{rule:.1f}", f"{machine:.1f}"]
    rows = [[count, written, dead, *times, peak_rule, peak_pollers]]
    return rows, {"seconds": seconds, "machine": machine, "capacity": capacity, "p50_ms": p50_ms, "minute": minute}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="300 orders for the trap, 500 to scale")
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--scale-orders", type=int, default=10_000)
    parser.add_argument("--time-scale", type=float, default=0.05, help="the scaling minute is 60 s times this")
    args = parser.parse_args()
    trap_orders, scale_orders = (300, 500) if args.quick else (args.orders, args.scale_orders)

    # One embedded AWS for both parts: moto's state is per process, so a second one would see the first's stacks.
    embedded = EmbeddedAws(port=0, time_scale=args.time_scale).start()
    try:
        aws = connect(REGION, endpoint_url=embedded.endpoint, credentials=LOCAL_CREDENTIALS)
        rows, honest = trap(embedded, aws, trap_orders)
        scaled, measured = scale(embedded, aws, scale_orders, args.time_scale)
    finally:
        embedded.stop()
    print(table(["stack", "orders", "written", "dead-lettered", "lost", "throttles", "drain s"], rows))
    print(
        table(
            [
                "orders",
                "written",
                "dead-lettered",
                "publish s",
                "drain s",
                "rule's ideal s",
                f"ideal at {measured['capacity']} batches s",
                "rule's batches (peak)",
                "pollers (peak)",
            ],
            scaled,
        )
    )
    print(
        f"scaling minute {measured['minute']:g}s, median batch {measured['p50_ms']:.1f} ms; "
        f"this machine runs at most {measured['capacity']} batches per mapping"
    )
    reserved_dead, capped_dead = rows[0][3], rows[1][3]
    trap_shown = reserved_dead > 0 and capped_dead == 0  # type: ignore[operator]
    ratio = measured["seconds"] / measured["machine"]  # type: ignore[operator]
    print(
        f"RESULT trap: {reserved_dead} dead letters with reserved concurrency 2 vs {capped_dead} with maximum "
        f"concurrency 2 (target: some vs none, nothing lost); scale: drained in {ratio:.2f}x the rule's ideal "
        f"at this machine's capacity (target < 10x)"
    )
    return 0 if (trap_shown and honest and ratio < 10) or args.quick else 1


if __name__ == "__main__":
    raise SystemExit(main())
