"""Operating the pipeline, end to end on an embedded AWS whose CloudWatch minute lasts 3 s (--time-scale 0.05):
a poison order's three attempts in `trace`, its move to the DLQ, the DLQ alarm going to ALARM and notifying the
alerts topic, firing again for a second poison order, and `watch --once --json` agreeing with what happened."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import ORDER, PROJECT_ROOT, Aws, Cli, free_port, wait_for

pytestmark = pytest.mark.e2e

SCALE = "0.05"  # CloudWatch's minute: 3 s


@pytest.fixture(scope="module")
def fast_minute(tmp_path_factory):
    """A second embedded AWS (instant control plane) whose CloudWatch minute lasts 60 s x 0.05."""
    cli = Cli(tmp_path_factory.mktemp("orderflow-operate"))
    started = cli.json("local", "start", "--port", str(free_port()), "--time-scale", SCALE)
    assert started["time_scale"] == float(SCALE) and started["realistic"] is False
    yield cli, Aws(started["endpoint"])
    cli("local", "stop", check=False)


def _inbox(aws: Aws, topic: str) -> str:
    """A queue subscribed to the alerts topic, standing in for the mailbox (its policy lets the topic send)."""
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    topic_arn = f"arn:aws:sns:us-east-1:{aws.account}:{topic}"
    policy = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "sns.amazonaws.com"},
                "Action": "sqs:SendMessage",
                "Resource": queue_arn,
                "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
            }
        ],
    }
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
    aws.client("sns").subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    return url


def _notifications(aws: Aws, url: str) -> list[dict]:
    messages = aws.client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
    found = []
    for message in messages.get("Messages", []):
        aws.client("sqs").delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
        envelope = json.loads(message["Body"])
        found.append({"subject": envelope.get("Subject"), **json.loads(envelope["Message"])})
    return found


def _alarm_state(aws: Aws, name: str) -> str:
    return aws.client("cloudwatch").describe_alarms(AlarmNames=[name])["MetricAlarms"][0]["StateValue"]


def _poison(aws: Aws, order_id: str) -> str:
    return aws.publish("OrderTopic", json.dumps(ORDER | {"orderId": order_id, "quantity": 0}))


@pytest.mark.slow
def test_poison_orders_are_traced_dead_lettered_alarmed_and_counted(fast_minute, tmp_path: Path):
    cli, aws = fast_minute
    up = cli.json("up", "--function-timeout", "1", "--visibility-timeout", "6", "--alarm-email", "ops@example.com")
    assert {r["resource"] for r in up["results"]} >= {"alerts_topic", "dlq_alarm"}
    status = {r["key"]: r for r in cli.json("status")["resources"]}
    assert "ops@example.com" in status["alerts_topic"]["detail"]
    inbox = _inbox(aws, "OrderAlerts")
    alarm = "OrderQueueDLQ-NewLetters"
    wait_for(lambda: _alarm_state(aws, alarm) == "OK", 30, "the new alarm's first evaluation")

    # A poison order: three attempts, then the DLQ; the alarm fires and notifies the alerts topic.
    first_id = _poison(aws, "poison-1")
    wait_for(lambda: aws.depth("OrderQueueDLQ") == 1, 60, "the first poison order in the DLQ")
    notices = wait_for(lambda: _notifications(aws, inbox), 30, "the alarm's notification")
    assert notices[0]["subject"] == f'ALARM: "{alarm}" in us-east-1'
    assert (notices[0]["AlarmName"], notices[0]["NewStateValue"]) == (alarm, "ALARM")
    wait_for(lambda: _alarm_state(aws, alarm) == "OK", 30, "the alarm back to OK once no new letter comes")

    story = cli.json("trace", "poison-1", "--export", str(tmp_path / "trace.svg"))
    attempts = [e for e in story["events"] if e["hop"] == "lambda"]
    assert [a["receiveCount"] for a in attempts] == [1, 2, 3]
    assert {a["outcome"] for a in attempts} == {"invalid"} and all(a["duration_ms"] > 0 for a in attempts)
    assert story["events"][-1]["hop"] == "dlq" and story["events"][-1]["estimated"] is True
    assert story["events"][0] == story["events"][0] | {"hop": "sns", "snsMessageId": first_id}
    assert not any(e["hop"] == "dynamodb" for e in story["events"]) and story["stored"] is None
    assert (tmp_path / "trace.svg").read_text().startswith("<svg")
    by_message = cli.json("trace", "--message-id", attempts[0]["sqsMessageId"])
    assert by_message["orderId"] == "poison-1" and len(by_message["events"]) == len(story["events"])

    # A second poison order later: the alarm fires again (an alarm on "visible > 0" would stay silent).
    _poison(aws, "poison-2")
    wait_for(lambda: aws.depth("OrderQueueDLQ") == 2, 60, "the second poison order in the DLQ")
    again = wait_for(lambda: _notifications(aws, inbox), 30, "the alarm's second notification")
    assert again[0]["NewStateValue"] == "ALARM" and again[0]["OldStateValue"] == "OK"

    # A good order too, then the dashboard's numbers agree with what happened: 7 invocations (3 + 3 + 1), none an
    # error (a batch item failure is not a function error), 2 dead letters, 1 order written.
    [good] = cli.json("publish-test")["published"]
    wait_for(lambda: aws.item("Orders", good["orderId"]), 30, "the good order in the table")

    def snapshot() -> dict | None:
        seen = cli.json("watch", "--once", "--since", "10m", "--interval", "60")
        return seen if seen["function"]["invocations"] == 7 and seen["written"]["total"] == 1 else None

    seen = wait_for(snapshot, 30, "the invocations' metrics", interval=1)
    assert seen["ok"] is True and seen["window_s"] == 600
    assert seen["function"]["errors"] == 0 and seen["function"]["throttles"] == 0
    assert 0 < seen["function"]["duration_p50_ms"] <= seen["function"]["duration_p95_ms"]
    assert seen["dlq"] == {"visible": 2}
    assert seen["queue"]["visible"] == 0 and seen["queue"]["in_flight"] == 0
    assert seen["alarm"]["name"] == alarm and seen["alarm"]["state"] in ("ALARM", "OK")

    human = cli("--local", "watch", "--once")
    assert "DLQ alarm" in human.stdout and "7 invocations" in human.stdout
    _ctrl_c_ends_watching(cli)

    # Redriven, the poison orders fail three more times and return to the DLQ: trace tells the whole story.
    assert cli.json("dlq", "redrive")["moved"] == 2
    wait_for(lambda: aws.depth("OrderQueueDLQ") == 2, 60, "both poison orders back in the DLQ")
    whats = [(e["hop"], e["what"]) for e in cli.json("trace", "poison-1")["events"]]
    assert [w for w in whats if w[0] == "lambda"] == [("lambda", f"attempt {n}: invalid") for n in (1, 2, 3) * 2]
    assert whats.index(("sqs", "redriven to the queue")) == whats.index(("lambda", "attempt 3: invalid")) + 2
    assert whats[-1] == ("dlq", "moved to OrderQueueDLQ")

    cli.json("down", "--yes")
    assert aws.client("cloudwatch").describe_alarms(AlarmNames=[alarm])["MetricAlarms"] == []


def as_in_a_terminal() -> None:
    """Ctrl-C as a user's terminal delivers it: a shell starts a background job (`bash .ci/run &`) with SIGINT
    ignored, and its children would inherit that; the process a user watches in a terminal has the default."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _ctrl_c_ends_watching(cli: Cli) -> None:
    """Watching (plain lines: not a terminal) runs until Ctrl-C, which ends it cleanly with exit code 0."""
    process = subprocess.Popen(
        [sys.executable, "-m", "orderflow", "--local", "watch", "--interval", "1"],
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=PROJECT_ROOT,
        preexec_fn=as_in_a_terminal,
    )
    try:
        lines = [process.stdout.readline() for _ in range(2)]  # two snapshots: it keeps watching
        assert all("| alarm " in line for line in lines), lines
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0 and "Traceback" not in stderr, stderr
