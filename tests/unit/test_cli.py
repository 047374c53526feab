"""The CLI in-process (click's runner) against moto: output contracts, exit codes, one-line errors."""

from __future__ import annotations

import json
import socket

import pytest
from click.testing import CliRunner

from orderflow.cli import cli


@pytest.fixture
def run(mocked):
    runner = CliRunner()

    def invoke(*args: str, env: dict[str, str] | None = None):
        return runner.invoke(cli, ["--region", "eu-west-3", *args], env=env, catch_exceptions=False)

    return invoke


def test_up_json_is_one_document_and_second_up_changes_nothing(run):
    first = run("--json", "up")
    assert first.exit_code == 0, first.output
    document = json.loads(first.stdout)
    assert [r["outcome"] for r in document["results"]] == ["created"] * 11
    second = json.loads(run("--json", "up").stdout)
    assert {r["outcome"] for r in second["results"]} == {"unchanged"}


def test_up_prints_a_line_per_resource(run):
    result = run("up")
    assert result.exit_code == 0
    for name in ("Orders", "OrderTopic", "OrderQueueDLQ", "ProcessOrderFunction-role", "ProcessOrderFunction"):
        assert name in result.stdout
    assert result.stdout.count("created") == 11
    assert "eu-west-3" in result.stdout


def test_dry_run_lists_the_plan_and_creates_nothing(run):
    result = run("up", "--dry-run")
    assert result.exit_code == 0
    assert "11 change(s) planned, nothing was changed" in result.stdout
    status = json.loads(run("--json", "status").stdout)
    assert {r["state"] for r in status["resources"]} == {"missing"}


def test_deprecated_runtime_warns_on_stderr(run):
    result = run("up", "--runtime", "python3.9")
    assert result.exit_code == 0
    assert "deprecated" in result.stderr


def test_bad_visibility_timeout_is_a_usage_error(run):
    result = run("up", "--function-timeout", "10", "--visibility-timeout", "30")
    assert result.exit_code == 2
    assert "below 6 x the function timeout" in result.stderr
    assert "Traceback" not in result.output


def test_down_refuses_to_delete_the_table_without_yes_when_not_interactive(run):
    run("up")
    result = run("down")
    assert result.exit_code == 1
    assert "Refusing without --yes" in result.stderr
    assert {r["state"] for r in json.loads(run("--json", "status").stdout)["resources"]} == {"exists"}
    assert run("down", "--yes").exit_code == 0
    assert {r["state"] for r in json.loads(run("--json", "status").stdout)["resources"]} == {"missing"}


def test_foreign_resource_is_one_line_and_exit_1(run):
    import boto3

    boto3.client("sns", region_name="eu-west-3").create_topic(Name="OrderTopic")
    result = run("--json", "up")
    assert result.exit_code == 1
    assert json.loads(result.stdout) == {
        "ok": False,
        "code": "foreign",
        "error": result.stderr.split("error: ", 1)[1].strip(),
    }
    assert "SNS topic 'OrderTopic' already exists" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_stack_option_and_environment_variable(run):
    assert run("--stack", "blue", "up").exit_code == 0
    rows = json.loads(run("--json", "status", env={"ORDERFLOW_STACK": "blue"}).stdout)["resources"]
    assert rows[0]["name"] == "blue-Orders" and rows[0]["state"] == "exists"


def test_missing_credentials_are_one_line(monkeypatch):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    result = CliRunner().invoke(cli, ["--region", "eu-west-1", "status"])
    assert result.exit_code == 1
    assert "No AWS credentials found" in result.stderr
    assert "Traceback" not in result.output


def test_missing_region_is_one_line():
    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 1
    assert "No AWS region configured" in result.stderr


def test_unreachable_endpoint_is_one_line():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    result = CliRunner().invoke(cli, ["--region", "eu-west-1", "--endpoint-url", f"http://127.0.0.1:{port}", "status"])
    assert result.exit_code == 1
    assert "Cannot reach" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_local_without_a_running_embedded_aws_is_one_line():
    result = CliRunner().invoke(cli, ["--local", "status"])
    assert result.exit_code == 1
    assert "No embedded AWS is running" in result.stderr


def test_down_names_the_queued_orders_it_would_delete_and_keep_data_keeps_them(run):
    import boto3

    from orderflow.local.patches.moto import PATCHES

    run("up")
    with PATCHES.active():  # queues hold messages as SQS's do (moto would invoke the function itself)
        _down_with_queued_orders(run, boto3)


def _down_with_queued_orders(run, boto3):
    sqs = boto3.client("sqs", region_name="eu-west-3")
    url = sqs.get_queue_url(QueueName="OrderQueue")["QueueUrl"]
    for i in range(3):
        sqs.send_message(QueueUrl=url, MessageBody=f"order {i}")
    refused = run("down")
    assert refused.exit_code == 1
    assert "SQS queue 'OrderQueue' with 3 queued order(s)" in refused.stderr
    kept = run("down", "--keep-data")
    assert kept.exit_code == 0, kept.output
    assert "kept, with its 3 queued order(s)" in kept.stdout
    assert (
        "kept DynamoDB table Orders, SQS dead-letter queue OrderQueueDLQ, SQS queue OrderQueue and what" in kept.stdout
    )
    assert sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"] == {
        "ApproximateNumberOfMessages": "3"
    }


def test_status_shows_each_resources_own_arn(run):
    run("up")
    rows = {r["key"]: r for r in json.loads(run("--json", "status").stdout)["resources"]}
    topic = rows["topic"]["arn"]
    assert rows["subscription"]["arn"].startswith(topic + ":") and rows["subscription"]["arn"] != topic
    assert ":event-source-mapping:" in rows["trigger"]["arn"]
    assert rows["trigger"]["arn"] != rows["function"]["arn"]


def test_dlq_show_counts_the_receives_before_its_own(run):
    import boto3

    run("up")
    sqs = boto3.client("sqs", region_name="eu-west-3")
    url = sqs.get_queue_url(QueueName="OrderQueueDLQ")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody='{"orderId": "O-1"}')
    for _ in range(3):  # three failed attempts, each made visible again at once
        [message] = sqs.receive_message(QueueUrl=url, WaitTimeSeconds=0)["Messages"]
        sqs.change_message_visibility(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
    [letter] = json.loads(run("--json", "dlq", "show").stdout)["letters"]
    assert letter["receiveCount"] == 3


def test_verify_on_a_stack_that_is_not_up_says_so_in_one_line(run):
    result = run("verify", "--order-id", "O-1", "--timeout", "0")
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        "error: Table 'Orders' does not exist in eu-west-3: the stack is not up (run `orderflow up`)"
    )


def test_policy_prints_the_deployers_document_and_refuses_what_cannot_be_a_policy(run):
    result = run("--json", "--stack", "shop", "policy", "--commands", "up,down")
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    actions = {a for s in document["Statement"] for a in s["Action"]}
    assert {"dynamodb:CreateTable", "dynamodb:DeleteTable", "iam:PassRole"} <= actions
    assert "dynamodb:GetItem" not in actions and "sns:Publish" not in actions  # verify's and publish-test's only
    scoped = [s for s in document["Statement"] if s["Sid"] != "SelfCheck"]  # the caller itself: user/${aws:username}
    assert all("shop-" in str(s["Resource"]) or "*" in str(s["Resource"]) for s in scoped)
    role = "arn:aws:iam::123456789012:role/ci-deployer"
    itself = json.loads(run("--json", "policy", "--commands", "up", "--deployer", role).output)
    assert any(s["Action"] == ["iam:SimulatePrincipalPolicy"] and s["Resource"] == role for s in itself["Statement"])
    assert run("policy", "--commands", "up,deploy").exit_code == 2
    assert run("policy", "--deployer", "ci-deployer").exit_code == 2
    cannot = run("policy", "--check")  # moto in-process has no simulator: said, and not a pass
    assert cannot.exit_code == 1 and "cannot check" in cannot.output
