"""`orderflow policy` is derived from the resource modules and holds what the commands call — and nothing more.

Every call a deployer's commands make is recorded on the wire (in front of the embedded AWS's enforcement) and must
be granted by the policy; every action the policy grants must be called by some command, or be one of the few
whose call depends on what a user or AWS did (listed below, with the path that makes it)."""

from __future__ import annotations

import json

import boto3
import pytest
from click.testing import CliRunner

from orderflow.cli import cli
from orderflow.iam.evaluation import Policies, Principal, Request, decide
from orderflow.local.iam.actions import needs
from orderflow.local.server.embedded import EmbeddedAws
from orderflow.local.server.wire import parse_request
from orderflow.provision.grants import COMMANDS, Grant, deployer_policy, grant

REGION = "eu-west-2"

# Granted, but called only on a path this run does not take.
CONDITIONAL = {
    "dynamodb:UpdateTable": "the table's billing mode was changed by hand",
    "iam:UpdateAssumeRolePolicy": "the role's trust policy was changed by hand",
    "iam:DetachRolePolicy": "someone attached a managed policy to the role",
    "iam:GetPolicy": "verify reads a managed policy attached to the role, or its permissions boundary",
    "iam:GetPolicyVersion": "verify reads a managed policy attached to the role, or its permissions boundary",
    "lambda:ListTags": "GetFunction answers without the function's tags (a caller denied lambda:ListTags on AWS)",
    "lambda:GetFunctionConfiguration": "a function update failed and up explains why",
    "sqs:StartMessageMoveTask": "dlq redrive on AWS (the embedded AWS has no message move task: it moves by hand)",
    "sqs:ListMessageMoveTasks": "dlq redrive on AWS",
}


@pytest.fixture(scope="module")
def recorded():
    """The calls the deployer's keys made, on the wire: [(command, need)]."""
    calls: list[tuple[str, object]] = []
    current = ["?"]
    keys: dict[str, str] = {}

    def wrap(app):
        def recorder(environ, start_response):
            request = parse_request(environ)
            if request is not None and request.access_key == keys.get("AWS_ACCESS_KEY_ID"):
                calls.extend((current[0], n) for n in needs(request, "123456789012"))
            return app(environ, start_response)

        return recorder

    with EmbeddedAws(wrap_app=wrap) as aws:
        admin = {"AWS_ACCESS_KEY_ID": "admin", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": REGION,
                 "ORDERFLOW_ENDPOINT_URL": aws.endpoint}  # fmt: skip
        runner = CliRunner()
        policy = json.loads(runner.invoke(cli, ["--json", "policy"], env=admin, catch_exceptions=False).output)
        iam = boto3.client("iam", endpoint_url=aws.endpoint, region_name=REGION, aws_access_key_id="a",
                           aws_secret_access_key="a")  # fmt: skip
        iam.create_user(UserName="deployer")
        iam.put_user_policy(UserName="deployer", PolicyName="orderflow", PolicyDocument=json.dumps(policy))
        key = iam.create_access_key(UserName="deployer")["AccessKey"]
        keys.update(AWS_ACCESS_KEY_ID=key["AccessKeyId"], AWS_SECRET_ACCESS_KEY=key["SecretAccessKey"])
        env = {**admin, **keys}
        message = ""
        for args in (
            ["up"],
            ["up", "--memory", "256", "--visibility-timeout", "90", "--max-receive-count", "4", "--batch-size", "5",
             "--max-concurrency", "5", "--alarm-email", "ops@example.com", "--architecture", "arm64"],
            ["up", "--alarm-email", ""],
            ["status"],
            ["publish-test"],
            ["verify"],
            ["watch", "--once"],
            ["trace", "--message-id", "{id}"],
            ["logs"],
            ["dlq", "show"],
            ["dlq", "redrive"],
            ["policy", "--check"],
            ["down", "--yes"],
        ):  # fmt: skip
            if args[0] == "dlq" and args[1] == "show":  # a dead letter to show and to redrive
                sqs = boto3.client("sqs", endpoint_url=aws.endpoint, region_name=REGION, aws_access_key_id="a",
                                   aws_secret_access_key="a")  # fmt: skip
                sqs.send_message(QueueUrl=sqs.get_queue_url(QueueName="OrderQueueDLQ")["QueueUrl"], MessageBody="{}")
            current[0] = args[0]
            result = runner.invoke(cli, [a.replace("{id}", message) for a in args], env=env, catch_exceptions=False)
            assert result.exit_code == 0, (args, result.output)
            if args[0] == "publish-test":
                message = result.output.split("as SNS message ")[1].split()[0]
    return policy, calls


@pytest.mark.slow
def test_every_call_the_commands_make_is_granted(recorded):
    policy, calls = recorded
    principal = Principal("AWS", "arn:aws:iam::123456789012:user/deployer", "123456789012")
    refused = []
    for command, need in calls:
        context = {"aws:username": "deployer", **need.context}
        verdict = decide(Policies([policy]), Request(need.action, need.resource, principal, context))
        if need.action != "sts:GetCallerIdentity" and verdict.decision != "allow":
            refused.append((command, need.action, need.resource))
    assert refused == []


@pytest.mark.slow
def test_every_action_granted_is_called_by_a_command_or_on_a_named_path(recorded):
    policy, calls = recorded
    called = {need.action.lower() for _, need in calls}
    granted = {a for s in policy["Statement"] for a in s["Action"]}
    unused = {a for a in granted if a.lower() not in called and a not in CONDITIONAL}
    assert unused == set()
    assert {a for a in CONDITIONAL if a in granted and a.lower() in called} == set()  # the list stays honest


def test_the_policy_is_the_union_of_the_selected_commands_grants_and_scoped_to_them():
    grants = [
        Grant(frozenset({"up"}), ("sqs:CreateQueue",), ("arn:q",), None, "queue"),
        Grant(frozenset({"up", "dlq"}), ("sqs:GetQueueUrl",), ("arn:q",), None, "queue"),
        Grant(frozenset({"watch"}), ("cloudwatch:GetMetricData",), ("*",), None, "alarm"),
        grant({"up"}, ("iam:PassRole",), "arn:r", condition={"StringEquals": {"iam:PassedToService": "x"}}),
    ]
    assert deployer_policy(grants, ["dlq"])["Statement"] == [
        {"Sid": "Queue", "Effect": "Allow", "Action": ["sqs:GetQueueUrl"], "Resource": "arn:q"}
    ]
    everything = deployer_policy(grants, COMMANDS)["Statement"]
    assert [s["Sid"] for s in everything] == ["Queue", "NoResourceType", "Stack"]
    assert everything[0]["Action"] == ["sqs:CreateQueue", "sqs:GetQueueUrl"]
    assert everything[2]["Condition"] == {"StringEquals": {"iam:PassedToService": "x"}}


def test_policy_check_deployer_checks_that_deployer_not_the_caller(tmp_path, monkeypatch):
    """An administrator asks about another principal: IAM simulates that principal's policies (it said "IAM knows no
    user … user/moto" for the caller instead)."""
    monkeypatch.setenv("ORDERFLOW_HOME", str(tmp_path / "home"))
    with EmbeddedAws(runtime=False) as aws:
        admin = {"AWS_ACCESS_KEY_ID": "admin", "AWS_SECRET_ACCESS_KEY": "x", "AWS_DEFAULT_REGION": REGION,
                 "ORDERFLOW_ENDPOINT_URL": aws.endpoint}  # fmt: skip
        iam = boto3.client("iam", endpoint_url=aws.endpoint, region_name=REGION, aws_access_key_id="admin",
                           aws_secret_access_key="x")  # fmt: skip
        deployer = iam.create_user(UserName="ci-deployer")["User"]["Arn"]
        runner = CliRunner()
        check = ["policy", "--commands", "up", "--check", "--deployer", deployer]
        lacking = runner.invoke(cli, check, env=admin)
        assert lacking.exit_code != 0
        refusals = [line for line in lacking.stderr.splitlines() if " may not call " in line]
        assert refusals and all(
            line.startswith(f"error: {deployer} may not call ") or line.startswith(f"{deployer} may not call ")
            for line in refusals
        ), lacking.stderr
        document = runner.invoke(cli, ["--json", "policy", "--commands", "up", "--deployer", deployer], env=admin)
        managed = iam.create_policy(PolicyName="orderflow-up", PolicyDocument=document.stdout)["Policy"]["Arn"]
        iam.attach_user_policy(UserName="ci-deployer", PolicyArn=managed)
        allowed = runner.invoke(cli, check, env=admin)
        assert allowed.exit_code == 0, allowed.output
        assert f"{deployer} may run up on stack default" in allowed.stdout
