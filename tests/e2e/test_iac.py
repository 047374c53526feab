"""Infrastructure as code, as a new user tries it: `orderflow export`, `aws cloudformation deploy` of that template on
the embedded AWS (the code uploaded to its S3 by `--upload-to`), then every proof through `--from-cloudformation`
with the real handler running; `up` and `down` refuse the stack; deleting the CloudFormation stack leaves nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import REGION, Aws, Cli

pytestmark = pytest.mark.e2e


def aws_cli(endpoint: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """The AWS CLI (awscli, a real client) against the embedded AWS."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    command = [sys.executable, "-m", "awscli", "--endpoint-url", endpoint, *args]
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    if check and result.returncode != 0:
        raise AssertionError(f"aws {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture
def cloudformation_stack(embedded):
    """A fresh orderflow stack name and the CloudFormation stack that will hold it; deleted afterwards."""
    name = f"c{uuid.uuid4().hex[:8]}"
    yield name, f"{name}-cfn"
    aws_cli(embedded, "cloudformation", "delete-stack", "--stack-name", f"{name}-cfn", check=False)


def deploy(cli: Cli, embedded: str, aws: Aws, stack: str, cfn_stack: str, out: Path, *settings: str) -> None:
    """export (uploading the code), then `aws cloudformation deploy`: what the README tells a user to run."""
    bucket = f"{stack}-code"
    aws.client("s3").create_bucket(Bucket=bucket)
    cli("--local", "--stack", stack, "export", "--format", "cloudformation", "--output", str(out),
        "--upload-to", bucket, *settings)  # fmt: skip
    aws_cli(embedded, "cloudformation", "deploy", "--template-file", str(out / "template.json"),
            "--stack-name", cfn_stack, "--capabilities", "CAPABILITY_NAMED_IAM")  # fmt: skip


def test_an_exported_template_deployed_by_the_aws_cli_is_proven_hop_by_hop(
    cli, embedded, aws, cloudformation_stack, tmp_path
):
    stack, cfn_stack = cloudformation_stack
    deploy(cli, embedded, aws, stack, cfn_stack, tmp_path / "out", "--alarm-email", "ops@example.com")
    proven = ["--local", "--from-cloudformation", cfn_stack]

    status = json.loads(cli(*proven, "--json", "status").stdout)
    assert {r["state"] for r in status["resources"]} == {"exists"}
    assert f"{stack}-ProcessOrderFunction" in {r["name"] for r in status["resources"]}

    [published] = json.loads(cli(*proven, "--json", "publish-test").stdout)["published"]
    report = json.loads(cli(*proven, "--json", "verify", "--timeout", "60").stdout)
    assert report["ok"] and report["orderId"] == published["orderId"]
    assert [c["hop"] for c in report["checks"] if c["passed"]] == ["wiring", "sqs", "lambda", "dynamodb", "logs", "dlq"]
    trace = cli(*proven, "trace", published["orderId"]).stdout
    assert "written" in trace.lower()
    watched = json.loads(cli(*proven, "--json", "watch", "--once").stdout)
    assert watched["ok"]
    assert published["orderId"] in cli(*proven, "logs", "--since", "10m").stdout
    assert json.loads(cli(*proven, "--json", "dlq", "show").stdout)["letters"] == []

    for command in (["up"], ["down", "--yes"]):
        refused = cli(*proven, *command, check=False)
        assert refused.returncode == 1
        assert refused.stderr.strip() == (
            f"error: Stack is managed by CloudFormation stack {cfn_stack!r}: change it there (`orderflow "
            f"{command[0]}` only acts on stacks it built; status, publish-test, verify, watch, trace, logs and dlq "
            "work on this one)"
        )
    # Without being told, orderflow sees CloudFormation's own tag on what it would change, and refuses too.
    plain = cli("--local", "--stack", stack, "down", "--yes", check=False)
    assert plain.returncode == 1 and f"CloudFormation stack {cfn_stack!r}" in plain.stderr
    assert aws.item(f"{stack}-Orders", published["orderId"]) is not None

    aws_cli(embedded, "cloudformation", "delete-stack", "--stack-name", cfn_stack)
    aws_cli(embedded, "cloudformation", "wait", "stack-delete-complete", "--stack-name", cfn_stack)
    left = json.loads(cli("--local", "--stack", stack, "--json", "status").stdout)
    assert {r["state"] for r in left["resources"]} == {"missing"}
    assert [s for s in aws.client("sns").list_subscriptions()["Subscriptions"] if stack in s["TopicArn"]] == []


def test_a_broken_hop_of_a_cloudformation_stack_is_named_with_where_to_fix_it(
    cli, embedded, aws, cloudformation_stack, tmp_path
):
    stack, cfn_stack = cloudformation_stack
    deploy(cli, embedded, aws, stack, cfn_stack, tmp_path / "out")
    aws.client("iam").delete_role_policy(
        RoleName=f"{stack}-ProcessOrderFunction-role", PolicyName="DynamoPutItemPolicy"
    )
    proven = ["--local", "--from-cloudformation", cfn_stack]
    [published] = json.loads(cli(*proven, "--json", "publish-test").stdout)["published"]
    result = cli(*proven, "--json", "verify", "--timeout", "5", check=False)
    assert result.returncode == 1
    broken = [c for c in json.loads(result.stdout)["checks"] if c["passed"] is False]
    assert broken[0]["hop"] == "dynamodb", broken
    assert broken[0]["hint"] == (
        f"fix it in CloudFormation stack {cfn_stack!r} (orderflow proves this stack; it does not change it)"
    )
    assert aws.item(f"{stack}-Orders", published["orderId"]) is None
