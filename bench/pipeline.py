"""Benchmark 2: orders per second through the embedded pipeline (SNS -> SQS -> runtime -> handler -> DynamoDB) and
per-order latency, against the floor: a plain boto3 loop doing the same API work on the same server.

    python bench/pipeline.py [--quick] [--orders N]
    python bench/pipeline.py --caller-enforcement   # publisher and floor as an IAM user vs as the administrator
    python bench/pipeline.py --durable              # the daemon's durable state (journal + snapshots) vs in memory
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import (
    ApiCounter,
    cold_starts,
    function_processes_rss_mb,
    median,
    peak_rss_mb,
    percentile,
    restricted_session,
    stacks_on,
    start_embedded,
    table,
    thread_cpu_seconds,
)  # also puts the project on sys.path

from orderflow.flow.logs import fetch_events
from orderflow.flow.publish import sample_order
from orderflow.lambda_code.index import ORDER_CLOCK_ATTRIBUTE, WRITE_CONDITION, order_clock
from orderflow.stack import StackConfig, StackSettings

# What the metrics and the alarm evaluation call (botocore's CloudWatch client may speak a REST-like protocol, whose
# operation is the path's last part).
CLOUDWATCH_CALLS = {"PutMetricData", "GetMetricData", "DescribeAlarms", "SetAlarmState"}


def publish_all(aws, topic_arn: str, orders: list[dict]) -> dict[str, float]:
    """Publish in batches of 10; returns each orderId's publish instant (just before its batch was sent)."""
    sns = aws.client("sns")
    sent: dict[str, float] = {}
    for start in range(0, len(orders), 10):
        chunk = orders[start : start + 10]
        now = time.time()
        sns.publish_batch(
            TopicArn=topic_arn,
            PublishBatchRequestEntries=[{"Id": str(i), "Message": json.dumps(o)} for i, o in enumerate(chunk)],
        )
        sent.update({o["orderId"]: now for o in chunk})
    return sent


def written_at(aws, config: StackConfig, since_ms: int, expected: set[str], timeout: float) -> dict[str, float]:
    """When the handler logged each order as written (the runtime stamps lines as the handler prints them)."""
    deadline = time.monotonic() + timeout
    found: dict[str, float] = {}
    while time.monotonic() < deadline:
        for event in fetch_events(aws, config, since_ms, pattern='"written"'):
            record = event.handler_record
            if record and record.order_id in expected:
                found.setdefault(record.order_id, event.timestamp / 1000)
        if len(found) == len(expected):
            return found
        time.sleep(0.5)
    raise SystemExit(f"only {len(found)} of {len(expected)} orders were written within {timeout:.0f}s")


def pipeline_run(aws, config: StackConfig, count: int, pace: float | None = None) -> tuple[float, list[float]]:
    orders = [sample_order() for _ in range(count)]
    since_ms = int(time.time() * 1000) - 1000
    topic = aws.arns.topic(config.topic_name)
    if pace:
        sent = {}
        for order in orders:  # one at a time, below capacity: latency without queueing
            sent.update(publish_all(aws, topic, [order]))
            time.sleep(pace)
    else:
        sent = publish_all(aws, topic, orders)
    done = written_at(aws, config, since_ms, set(sent), timeout=max(60, count / 5))
    latencies = [done[o] - sent[o] for o in sent]
    elapsed = max(done.values()) - min(sent.values())
    return elapsed, latencies


def floor_run(aws, config: StackConfig, count: int) -> float:
    """The same API work per order with plain boto3 on one thread — publish 10, receive them, put each, delete
    the 10 — interleaved, so the queue stays as short as the pipeline keeps it (moto's receive slows down as a
    queue grows)."""
    orders = [sample_order() for _ in range(count)]
    sqs, ddb = aws.client("sqs"), aws.client("dynamodb")
    url = sqs.get_queue_url(QueueName=config.queue_name)["QueueUrl"]
    topic = aws.arns.topic(config.topic_name)
    started = time.time()
    for start in range(0, count, 10):
        chunk = orders[start : start + 10]
        publish_all(aws, topic, chunk)
        stored = 0
        while stored < len(chunk):
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
            for message in messages:
                order = json.loads(json.loads(message["Body"])["Message"])
                order[ORDER_CLOCK_ATTRIBUTE] = order_clock(order["timestamp"])
                # The handler's own write: conditional on the stored version (DynamoDB parses the condition).
                ddb.put_item(
                    TableName=config.table_name,
                    Item={k: {"N": str(v)} if isinstance(v, int) else {"S": v} for k, v in order.items()},
                    ConditionExpression=WRITE_CONDITION,
                    ExpressionAttributeNames={"#clock": ORDER_CLOCK_ATTRIBUTE},
                    ExpressionAttributeValues={":clock": {"S": order[ORDER_CLOCK_ATTRIBUTE]}},
                )
            if messages:
                sqs.delete_message_batch(
                    QueueUrl=url,
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
                )
            stored += len(messages)
    return time.time() - started


@dataclass
class Measured:
    floor_seconds: float
    burst_seconds: float
    burst_latency: list[float]
    paced_seconds: float
    paced_latency: list[float]
    rss: float
    workers: int
    worker_rss: float
    cold_starts: int
    # The metrics' own cost over the run: CloudWatch calls, CPU seconds of their threads, wall seconds.
    metric_calls: int = 0
    metric_cpu: float = 0.0
    seconds: float = 0.0


# What the publisher and the floor loop do, and nothing more: sent as an IAM user's calls, each is evaluated.
PUBLISHER_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": ["sns:Publish"], "Resource": "arn:aws:sns:*:*:*OrderTopic"},
        {"Effect": "Allow", "Action": ["sqs:GetQueueUrl", "sqs:ReceiveMessage", "sqs:DeleteMessage"],
         "Resource": "arn:aws:sqs:*:*:*OrderQueue"},
        {"Effect": "Allow", "Action": ["dynamodb:PutItem"], "Resource": "arn:aws:dynamodb:*:*:table/*Orders"},
        {"Effect": "Allow", "Action": ["logs:FilterLogEvents"], "Resource": "*"},
        {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
    ],
}  # fmt: skip


def pipeline_and_floor(embedded, runtime: str) -> tuple[Any, StackConfig, StackConfig]:
    """A session and two stacks: the pipeline's, and the floor's, whose queue no trigger consumes (its loop does)."""
    aws, [pipeline, floor] = stacks_on(embedded, "bench", "floor", settings=StackSettings(runtime=runtime))
    lam = aws.client("lambda")
    for mapping in lam.list_event_source_mappings(FunctionName=floor.function_name)["EventSourceMappings"]:
        lam.delete_event_source_mapping(UUID=mapping["UUID"])
    return aws, pipeline, floor


def warm(aws, pipeline: StackConfig) -> None:
    """The runtime warmed up: the mapping's pollers running, function processes started, their clients created."""
    time.sleep(1.5)
    pipeline_run(aws, pipeline, 20)


def measure(
    count: int,
    paced: int,
    http_pollers: bool,
    cloudwatch: bool,
    runtime: str,
    as_user: bool = False,
    durable: bool = False,
) -> Measured:
    started = time.monotonic()
    counter = ApiCounter()
    kept = Path(tempfile.mkdtemp(prefix="orderflow-bench-state-")) / "embedded-aws.state" if durable else None
    embedded = start_embedded(
        runtime=True, counter=counter, http_pollers=http_pollers, cloudwatch=cloudwatch, state_file=kept
    )
    try:
        aws, pipeline, floor = pipeline_and_floor(embedded, runtime)
        if as_user:
            aws = restricted_session(embedded, aws, f"publisher-{os.getpid()}-{time.monotonic_ns()}", PUBLISHER_POLICY)
        warm(aws, pipeline)
        floor_seconds = floor_run(aws, floor, count)
        burst_seconds, burst_latency = pipeline_run(aws, pipeline, count)
        paced_seconds, paced_latency = pipeline_run(aws, pipeline, paced, pace=0.05)
        workers, worker_rss = function_processes_rss_mb(embedded)
        measured = Measured(
            floor_seconds,
            burst_seconds,
            burst_latency,
            paced_seconds,
            paced_latency,
            peak_rss_mb(os.getpid()),
            workers,
            worker_rss,
            cold_starts(aws, pipeline.log_group_name),
        )
        if cloudwatch:
            # Counted from outside: the calls that reached CloudWatch (the benchmark makes none itself), and the
            # CPU time of the metrics' two threads.
            measured.metric_calls = sum(
                n for op, n in counter.snapshot().items() if op.rsplit("/", 1)[-1] in CLOUDWATCH_CALLS
            )
            measured.metric_cpu = thread_cpu_seconds("lambda-metrics", "cloudwatch-minute")
        measured.seconds = time.monotonic() - started
    finally:
        embedded.stop()
    return measured


def rows(label: str, count: int, paced: int, m: Measured) -> list[list[object]]:
    return [
        [f"{label}: floor, boto3 loop", count, f"{m.floor_seconds:.2f}", f"{count / m.floor_seconds:.0f}", "", "", ""],
        [
            f"{label}: pipeline, burst",
            count,
            f"{m.burst_seconds:.2f}",
            f"{count / m.burst_seconds:.0f}",
            f"{median(m.burst_latency):.3f}",
            f"{percentile(m.burst_latency, 0.95):.3f}",
            f"{max(m.burst_latency):.3f}",
        ],
        [
            f"{label}: pipeline, paced 20/s",
            paced,
            f"{m.paced_seconds:.2f}",
            "",
            f"{median(m.paced_latency):.3f}",
            f"{percentile(m.paced_latency, 0.95):.3f}",
            f"{max(m.paced_latency):.3f}",
        ],
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 orders (well under a minute)")
    parser.add_argument("--orders", type=int, default=1000)
    parser.add_argument(
        "--http-pollers",
        action="store_true",
        help="the mapping's pollers reach SQS over HTTP, as before they ran in-process (for comparison)",
    )
    parser.add_argument(
        "--caller-enforcement",
        action="store_true",
        help="publisher and floor as an IAM user whose every call is evaluated, beside the administrator's run",
    )
    parser.add_argument(
        "--durable",
        action="store_true",
        help="the daemon's durable state (write-ahead journal, snapshots) beside the in-memory embedded AWS",
    )
    parser.add_argument(
        "--runtime",
        default=StackSettings().runtime,
        help="the function's runtime: the embedded AWS runs it on that Python where this machine has it",
    )
    args = parser.parse_args()
    count = 200 if args.quick else args.orders
    paced = 20 if args.quick else 100

    if args.caller_enforcement:
        return alternating(
            count, paced, args, {"administrator": {}, "IAM user": {"as_user": True}},
            "publisher and floor as the administrator, then as an IAM user whose every call the embedded AWS "
            "evaluates", target=0.9,
        )  # fmt: skip
    if args.durable:
        return alternating(
            count, paced, args, {"in memory": {}, "durable": {"durable": True}},
            "in memory (tests, demo), then keeping its state as the daemon does (each write journaled before it is "
            "answered, a snapshot every 2 s and before each control-plane answer)", target=0.8,
        )  # fmt: skip
    # Metrics on (the default embedded AWS: Lambda's and SQS's metrics, alarms evaluated), then off, one after the
    # other in this run: both against their own floor, measured beside them.
    on = measure(count, paced, args.http_pollers, cloudwatch=True, runtime=args.runtime)
    off = measure(count, paced, args.http_pollers, cloudwatch=False, runtime=args.runtime)

    pollers = "over HTTP" if args.http_pollers else "in-process"
    print(
        f"{count} orders through an embedded AWS (pollers {pollers}, function on {args.runtime}), with CloudWatch's "
        "metrics and alarms on, then off; floor = one boto3 thread doing the same API work, interleaved"
    )
    headers = ["run", "orders", "seconds", "orders/s", "p50 s", "p95 s", "max s"]
    print(table(headers, rows("metrics on", count, paced, on) + rows("metrics off", count, paced, off)))
    print(
        f"peak RSS: embedded AWS + runtime {on.rss:.0f} MB; {on.workers} warm function process(es) "
        f"{on.worker_rss:.0f} MB together; {on.cold_starts} cold start(s)"
    )
    per_minute = 60 / on.seconds
    print(
        f"the metrics' own cost (metrics on, {on.seconds:.0f}s): {on.metric_calls} CloudWatch call(s), "
        f"{on.metric_calls * per_minute:.0f}/min; {on.metric_cpu * 1000:.0f} ms CPU, "
        f"{on.metric_cpu * 1000 * per_minute:.0f} ms/min"
    )
    ratio_on = on.floor_seconds / on.burst_seconds
    ratio_off = off.floor_seconds / off.burst_seconds
    p95 = percentile(on.paced_latency, 0.95)
    print(
        f"RESULT pipeline throughput with metrics on is {ratio_on:.2f}x the boto3 floor (target >= 0.8x), "
        f"{ratio_off:.2f}x with them off; warm p95 latency {p95:.3f}s (target < 1s)"
    )
    return 0 if (ratio_on >= 0.8 and p95 < 1) or args.quick else 1


def alternating(
    count: int, paced: int, args: argparse.Namespace, variants: dict[str, dict[str, Any]], what: str, target: float
) -> int:
    """Two variants of the embedded AWS, alternating, twice each: each against its own floor, the last variant's
    ratio held to `target`."""
    runs: dict[str, list[Measured]] = {label: [] for label in variants}
    for _ in range(2):
        for label, options in variants.items():
            runs[label].append(measure(count, paced, args.http_pollers, True, args.runtime, **options))
    print(f"{count} orders through an embedded AWS (function on {args.runtime}); {what}; alternating, twice each")
    headers = ["run", "orders", "seconds", "orders/s", "p50 s", "p95 s", "max s"]
    print(table(headers, [r for label, ms in runs.items() for i, m in enumerate(ms)
                          for r in rows(f"{label} #{i + 1}", count, paced, m)]))  # fmt: skip
    ratios = {label: [m.floor_seconds / m.burst_seconds for m in ms] for label, ms in runs.items()}
    print(
        "RESULT pipeline throughput / boto3 floor: "
        + "; ".join(f"{label} " + ", ".join(f"{r:.2f}x" for r in rs) for label, rs in ratios.items())
        + f" (target >= {target}x)"
    )
    return 0 if min(ratios[list(variants)[-1]]) >= target or args.quick else 1


if __name__ == "__main__":
    raise SystemExit(main())
