"""publish-test, verify, logs and dlq through the real CLI against the embedded AWS."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import ORDER, mapping_stopped, wait_for

pytestmark = pytest.mark.e2e


def _verify(cli, stack, *args):
    result = cli("--local", "--json", "--stack", stack, "verify", *args, check=False)
    return result.returncode, json.loads(result.stdout), result.stderr


def test_publish_then_verify_proves_all_six_hops(cli, stack, tmp_path):
    cli("--local", "--stack", stack, "up")
    [published] = cli.json("--stack", stack, "publish-test")["published"]
    code, report, _ = _verify(cli, stack, "--timeout", "30")
    assert code == 0, report
    assert report["orderId"] == published["orderId"]
    assert [(c["hop"], c["passed"]) for c in report["checks"]] == [
        ("wiring", True),
        ("sqs", True),
        ("lambda", True),
        ("dynamodb", True),
        ("logs", True),
        ("dlq", True),
    ]
    sqs = next(c for c in report["checks"] if c["hop"] == "sqs")
    assert published["messageId"] in sqs["evidence"]
    report_file = tmp_path / "verify.html"
    human = cli("--local", "--stack", stack, "verify", "--order-id", published["orderId"], "--export", str(report_file))
    assert "every hop proven" in human.stdout
    exported = report_file.read_text()  # the same report, for a bug report or a pull request
    assert exported.startswith("<!DOCTYPE html>") and "every hop proven" in exported
    assert published["orderId"] in exported


def test_verify_of_an_unknown_order_fails_on_the_dynamodb_hop(cli, stack):
    cli("--local", "--stack", stack, "up")
    code, report, stderr = _verify(cli, stack, "--order-id", "never-published", "--timeout", "1")
    assert code == 1
    first = next(c for c in report["checks"] if c["passed"] is False)
    assert first["hop"] == "dynamodb"
    assert "hop 'dynamodb' is broken" in stderr


@pytest.mark.slow
def test_verify_with_the_mapping_disabled_names_the_lambda_hop(cli, aws, stack, home):
    cli("--local", "--stack", stack, "up")
    function = f"{stack}-ProcessOrderFunction"
    uuid = aws.mapping(function)["UUID"]
    aws.client("lambda").update_event_source_mapping(UUID=uuid, Enabled=False)
    mapping_stopped(home, uuid)
    cli.json("--stack", stack, "publish-test")
    code, report, stderr = _verify(cli, stack, "--timeout", "3")
    assert code == 1
    first = next(c for c in report["checks"] if c["passed"] is False)
    assert first["hop"] == "lambda" and "create or enable the mapping" in first["hint"]
    assert "hop 'lambda' is broken" in stderr


@pytest.mark.slow
def test_verify_with_the_queue_policy_removed_names_the_wiring(cli, aws, stack):
    cli("--local", "--stack", stack, "up")
    aws.client("sqs").set_queue_attributes(QueueUrl=aws.queue_url(f"{stack}-OrderQueue"), Attributes={"Policy": ""})
    cli.json("--stack", stack, "publish-test")
    code, report, _ = _verify(cli, stack, "--timeout", "3")
    assert code == 1
    first = next(c for c in report["checks"] if c["passed"] is False)
    assert first["hop"] == "wiring" and "queue policy" in first["evidence"]


@pytest.mark.slow
def test_a_poison_order_is_shown_redriven_and_dead_lettered_again_without_loss(cli, aws, stack):
    cli("--local", "--stack", stack, "up", "--function-timeout", "1", "--visibility-timeout", "6")
    aws.publish(f"{stack}-OrderTopic", json.dumps(ORDER | {"orderId": "poison-1", "quantity": 0}))
    dlq = f"{stack}-OrderQueueDLQ"
    wait_for(lambda: aws.depth(dlq) == 1, 40, "the poison order in the DLQ")

    letters = cli.json("--stack", stack, "dlq", "show")["letters"]
    assert [letter["orderId"] for letter in letters] == ["poison-1"]
    assert cli.json("--stack", stack, "dlq", "show")["letters"][0]["messageId"] == letters[0]["messageId"]
    assert aws.depth(dlq) == 1  # showing loses nothing

    code, report, _ = _verify(cli, stack, "--order-id", "poison-1", "--timeout", "1")
    assert code == 1 and report["checks"][-1]["hop"] == "dlq" and report["checks"][-1]["passed"] is False

    moved = cli.json("--stack", stack, "dlq", "redrive")
    assert moved["moved"] == 1
    assert aws.depth(dlq) == 0
    wait_for(lambda: aws.depth(dlq) == 1, 40, "the poison order back in the DLQ after its retries")
    assert aws.depth(f"{stack}-OrderQueue") == 0
    attempts = [
        r for r in aws.handler_records(f"/aws/lambda/{stack}-ProcessOrderFunction") if r.get("orderId") == "poison-1"
    ]
    assert len(attempts) == 6 and {r["outcome"] for r in attempts} == {"invalid"}


def test_logs_shows_the_invocation(cli, aws, stack):
    cli("--local", "--stack", stack, "up")
    [published] = cli.json("--stack", stack, "publish-test")["published"]
    wait_for(lambda: aws.item(f"{stack}-Orders", published["orderId"]), 15, "the order")

    def logged():
        events = cli.json("--stack", stack, "logs", "--since", "5m")["events"]
        return events if any(e["message"].startswith("REPORT") for e in events) else None

    events = wait_for(logged, 15, "the REPORT line", interval=0.5)
    records = [e["record"] for e in events if e["record"]]
    assert records[0]["orderId"] == published["orderId"] and records[0]["outcome"] == "written"
    human = cli("--local", "--stack", stack, "logs", "--since", "5m").stdout
    assert f"WRITTEN {published['orderId']}" in human and "START RequestId" in human


def test_publish_test_options_and_bad_files(cli, stack, tmp_path):
    cli("--local", "--stack", stack, "up")
    three = cli.json("--stack", stack, "publish-test", "--count", "3")["published"]
    assert len({p["orderId"] for p in three}) == 3
    [fixed] = cli.json("--stack", stack, "publish-test", "--order-id", "O1234")["published"]
    assert fixed["orderId"] == "O1234"

    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(ORDER | {"orderId": "x", "quantity": "one"}))
    result = cli("--local", "--stack", stack, "publish-test", "--file", str(bad), check=False)
    assert result.returncode == 2 and "quantity must be an integer" in result.stderr

    good = tmp_path / "good.json"
    good.write_text(json.dumps([ORDER | {"orderId": "F1"}, ORDER | {"orderId": "F2"}]))
    assert [p["orderId"] for p in cli.json("--stack", stack, "publish-test", "--file", str(good))["published"]] == [
        "F1",
        "F2",
    ]
    code, report, _ = _verify(cli, stack, "--timeout", "20")
    assert code == 0 and report["orderId"] == "F2"


def test_publish_before_up_is_a_clear_error(cli, stack):
    result = cli("--local", "--stack", stack, "publish-test", check=False)
    assert result.returncode == 1
    assert "does not exist" in result.stderr and "orderflow up" in result.stderr
