"""`watch` and `trace`: the pure parts (timeline, waterfall, sparkline), a snapshot against moto, and their edges."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner

from orderflow.cli import cli
from orderflow.flow import watch as watch_flow
from orderflow.flow.dlq import DeadLetter
from orderflow.flow.logs import HandlerRecord
from orderflow.flow.trace import Attempt, timeline
from orderflow.provision import operations
from orderflow.ui import sparkline, waterfall_bar


def _attempt(count: int, started_ms: int, outcome: str = "invalid", sqs_id: str = "m-1") -> Attempt:
    record = HandlerRecord.parse(
        json.dumps(
            {
                "event": "order",
                "orderId": "o-1",
                "sqsMessageId": sqs_id,
                "snsMessageId": "s-1",
                "attempt": str(count),
                "outcome": outcome,
                "requestId": f"r-{count}-{started_ms}",
                "sentAt": "1000",
                "reason": "quantity must be an integer" if outcome == "invalid" else None,
            }
        )
    )
    assert record is not None
    return Attempt(record, started_ms + 5, started_ms, 5.0)


def test_a_poison_orders_timeline_has_each_attempt_then_the_estimated_move_to_the_dlq():
    attempts = [_attempt(1, 1_100), _attempt(2, 31_100), _attempt(3, 61_100)]
    letter = DeadLetter("m-1", "o-1", 4, None, "{}")
    events = timeline(attempts, ("s-1", 1_000), letter, 30, "OrderQueueDLQ", 3)
    assert [(e.hop, e.what) for e in events] == [
        ("sns", "published"),
        ("sqs", "queued"),
        ("lambda", "attempt 1: invalid"),
        ("lambda", "attempt 2: invalid"),
        ("lambda", "attempt 3: invalid"),
        ("dlq", "moved to OrderQueueDLQ"),
    ]
    moved = events[-1]
    assert moved.estimated and moved.at_ms == 61_100 + 5 + 30_000
    assert moved.to_document()["afterReceives"] == 3
    assert events[2].to_document()["duration_ms"] == 5.0
    assert events[2].to_document()["reason"] == "quantity must be an integer"  # the handler's own words
    assert events[0].to_document()["at"] == "1970-01-01T00:00:01.000+00:00"


def test_a_redriven_order_shows_the_move_and_the_redrive_then_the_write():
    attempts = [_attempt(1, 1_000), _attempt(2, 2_000), _attempt(3, 3_000), _attempt(1, 90_000, "written")]
    events = timeline(attempts, None, None, 30, "OrderQueueDLQ", 3)
    whats = [e.what for e in events]
    assert whats.index("moved to OrderQueueDLQ") < whats.index("redriven to the queue") < whats.index("written")
    assert events[0].hop == "sns" and events[0].details == {"snsMessageId": "s-1"}  # from the handler's line
    assert events[-1].hop == "dynamodb"


def test_the_same_order_published_again_after_a_success_is_no_redrive():
    attempts = [_attempt(1, 1_000, "written"), _attempt(1, 90_000, "stale", sqs_id="m-2")]
    whats = [e.what for e in timeline(attempts, None, None, 30, "OrderQueueDLQ", 3)]
    assert "redriven to the queue" not in whats and "moved to OrderQueueDLQ" not in whats
    assert whats.count("queued") == 2


def test_receives_the_handler_never_saw_are_shown_as_throttled_and_marked_inferred():
    # Receive 1 throttled, 2 invoked and failed, 3 throttled, then the move to the DLQ.
    letter = DeadLetter("m-1", "o-1", 3, None, "{}")
    events = timeline([_attempt(2, 31_100)], ("s-1", 1_000), letter, 30, "OrderQueueDLQ", 3)
    assert [(e.hop, e.what) for e in events] == [
        ("sns", "published"),
        ("sqs", "queued"),
        ("lambda", "attempt 1: throttled (received, never invoked)"),
        ("lambda", "attempt 2: invalid"),
        ("lambda", "attempt 3: throttled (received, never invoked)"),
        ("dlq", "moved to OrderQueueDLQ"),
    ]
    throttled = events[2].to_document()
    assert throttled["outcome"] == "throttled" and throttled["inferred"] and throttled["estimated"]
    assert events[-1].to_document()["afterReceives"] == 3


def test_an_order_throttled_on_every_receive_is_traced_from_its_publish_to_the_dlq():
    letter = DeadLetter("m-9", "o-1", 3, None, "{}")
    events = timeline([], ("s-1", 1_000), letter, 30, "OrderQueueDLQ", 3)
    assert [e.what for e in events] == [
        "published",
        *(f"attempt {n}: throttled (received, never invoked)" for n in (1, 2, 3)),
        "moved to OrderQueueDLQ",
    ]
    assert [e.at_ms for e in events] == [1_000, 1_000, 31_000, 61_000, 91_000]
    assert timeline([], None, letter, 30, "OrderQueueDLQ", 3) == []  # nothing known of it: no invented story


def test_waterfall_and_sparkline():
    assert waterfall_bar(0, 500.0, 0, 1000, 10) == "█████"
    assert waterfall_bar(500, None, 0, 1000, 10) == "     │"
    assert waterfall_bar(1000, None, 0, 1000, 10) == "         │"  # the last column, never beyond
    assert waterfall_bar(900, 500.0, 0, 1000, 10) == "         █"
    assert sparkline([0, 0]) == "▁▁" and sparkline([0, 4, 8]) == "▁▅█"


def test_a_snapshot_reads_depths_metrics_logs_and_the_alarm(ctx):
    operations.converge(ctx)
    now = datetime.now(timezone.utc)
    cloudwatch = ctx.client("cloudwatch")
    function = [{"Name": "FunctionName", "Value": ctx.config.function_name}]
    cloudwatch.put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[
            {
                "MetricName": "Invocations",
                "Dimensions": function,
                "Value": 4.0,
                "Timestamp": now - timedelta(minutes=1),
            },
            {
                "MetricName": "Invocations",
                "Dimensions": function,
                "Value": 3.0,
                "Timestamp": now - timedelta(minutes=2),
            },
            {"MetricName": "Errors", "Dimensions": function, "Value": 1.0, "Timestamp": now - timedelta(minutes=2)},
            {"MetricName": "Throttles", "Dimensions": function, "Value": 2.0, "Timestamp": now - timedelta(minutes=2)},
            *(
                {"MetricName": "ConcurrentExecutions", "Dimensions": function, "Value": v, "Timestamp": now - ago}
                for v, ago in ((3.0, timedelta(minutes=1)), (5.0, timedelta(minutes=2)), (9.0, timedelta(hours=1)))
            ),
            # outside the window: not counted
            {"MetricName": "Invocations", "Dimensions": function, "Value": 50.0, "Timestamp": now - timedelta(hours=1)},
        ],
    )
    url = ctx.client("sqs").get_queue_url(QueueName=ctx.config.dlq_name)["QueueUrl"]
    ctx.client("sqs").send_message(QueueUrl=url, MessageBody="{}")
    logs = ctx.client("logs")
    logs.create_log_stream(logGroupName=ctx.config.log_group_name, logStreamName="s")
    line = json.dumps({"event": "order", "outcome": "written", "orderId": "o"})
    logs.put_log_events(
        logGroupName=ctx.config.log_group_name,
        logStreamName="s",
        logEvents=[{"timestamp": int((now - timedelta(seconds=30)).timestamp() * 1000), "message": line}],
    )
    snapshot = watch_flow.snapshot(ctx.aws, ctx.config, 300, 60, now=now)
    document = snapshot.to_document()
    assert document["function"] | {"duration_p50_ms": None, "duration_p95_ms": None} == {
        "invocations": 7,
        "errors": 1,
        "throttles": 2,
        "peak_concurrency": 5,  # the most at once in the window (the 9 an hour ago is outside it)
        "duration_p50_ms": None,
        "duration_p95_ms": None,
    }
    assert document["dlq"] == {"visible": 1}
    assert document["queue"] == {"visible": 0, "in_flight": 0, "oldest_age_s": 0.0}
    assert document["alarm"]["name"] == "OrderQueueDLQ-NewLetters"
    assert document["written"] == {"interval_s": 60, "per_interval": [0, 0, 0, 0, 1], "total": 1}


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["trace"], "give an ORDER_ID or --message-id"),
        (["trace", "o-1", "--message-id", "m"], "give an ORDER_ID or --message-id"),
        (["trace", "o-1", "--export", "out.txt"], "must end in .svg, .html or .htm"),
        (["verify", "--order-id", "o", "--export", "out.pdf"], "must end in .svg, .html or .htm"),
        (["verify", "--order-id", "o", "--export", "README.md.svg"], "the file exists; choose another name"),
    ],
)
def test_trace_and_export_usage_errors_are_one_line(mocked, args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md.svg").write_text("<svg>an earlier report</svg>")
    result = CliRunner().invoke(cli, ["--region", "eu-west-3", *args], catch_exceptions=False)
    assert result.exit_code == 2
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["watch", "--since", "20d"], "15 days CloudWatch keeps"),
        (["watch", "--since", "99999d"], "15 days CloudWatch keeps one-minute datapoints (what watch counts from)"),
        (["watch", "--since", "1m", "--interval", "120"], "--since 60s is shorter than --interval 120"),
        (["watch", "--since", "1s"], "--since 1s is shorter than the 5 s interval (the default)"),
        (["trace", ""], "the ORDER_ID or --message-id to trace is empty"),
        (["trace", "--message-id", " "], "the ORDER_ID or --message-id to trace is empty"),
        (["watch", "--once"], "run `orderflow up` first"),
        (["trace", "nobody"], "No trace of order nobody on stack default"),
    ],
)
def test_watch_and_trace_errors_are_one_line(mocked, args, message):
    result = CliRunner().invoke(cli, ["--region", "eu-west-3", *args], catch_exceptions=False)
    assert result.exit_code in (1, 2)
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_trace_json_of_an_unknown_order_is_one_document(mocked):
    result = CliRunner().invoke(cli, ["--region", "eu-west-3", "--json", "trace", "nobody"], catch_exceptions=False)
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["ok"] is False and "No trace" in document["error"]


@pytest.mark.parametrize(("columns", "expected"), [("120", "DLQ alarm"), ("60", "OK (300s)")])
def test_watch_once_is_a_dashboard_or_on_a_narrow_terminal_one_plain_line(ctx, columns, expected):
    operations.converge(ctx)
    result = CliRunner().invoke(
        cli, ["--region", ctx.aws.region, "watch", "--once"], env={"COLUMNS": columns}, catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    assert expected in result.stdout
    if columns == "60":
        [line] = result.stdout.strip().splitlines()
        assert len(line) <= 60, line  # a 60-column terminal does not wrap it
