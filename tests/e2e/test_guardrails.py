"""Org guardrails that real accounts carry leave a working stack green — locally (the embedded AWS decides as AWS
does) and in verify's static check — and a boundary that takes away what the function needs turns it red, naming
the boundary. Policies from the IAM User Guide's and the SQS console's own examples."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import REGION

pytestmark = pytest.mark.e2e


def verify(cli, stack, timeout: int = 60) -> tuple[int, dict]:
    cli.json("--stack", stack, "publish-test")
    result = cli("--local", "--json", "--stack", stack, "verify", "--timeout", str(timeout), check=False)
    return result.returncode, json.loads(result.stdout)


def hops(report: dict) -> dict[str, bool | None]:
    return {c["hop"]: c["passed"] for c in report["checks"]}


def boundary(aws, name: str, actions: list[str]) -> str:
    document = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
    return aws.client("iam").create_policy(PolicyName=name, PolicyDocument=json.dumps(document))["Policy"]["Arn"]


@pytest.mark.slow
def test_console_queue_policy_tls_deny_region_lock_and_a_wide_boundary_stay_green(cli, aws, stack):
    cli("--local", "--stack", stack, "up")
    account, queue = aws.account, f"{stack}-OrderQueue"
    queue_arn, topic_arn = (
        f"arn:aws:sqs:{REGION}:{account}:{queue}",
        f"arn:aws:sns:{REGION}:{account}:{stack}-OrderTopic",
    )
    console = {  # what the SQS console writes when it subscribes a queue to a topic
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "SQS:SendMessage", "Resource": queue_arn,
             "Condition": {"ArnLike": {"aws:SourceArn": topic_arn}}},
            {"Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "sqs:*", "Resource": queue_arn,
             "Condition": {"Bool": {"aws:SecureTransport": "false"}}},
        ],
    }  # fmt: skip
    aws.client("sqs").set_queue_attributes(QueueUrl=aws.queue_url(queue), Attributes={"Policy": json.dumps(console)})
    region_lock = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*",
                       "Condition": {"StringNotEquals": {"aws:RequestedRegion": [REGION]}}}],
    }  # fmt: skip
    role = f"{stack}-ProcessOrderFunction-role"
    iam = aws.client("iam")
    iam.put_role_policy(RoleName=role, PolicyName="RegionLock", PolicyDocument=json.dumps(region_lock))
    wide = boundary(aws, f"{stack}-wide", ["sqs:*", "dynamodb:*", "logs:*"])
    iam.put_role_permissions_boundary(RoleName=role, PermissionsBoundary=wide)

    code, report = verify(cli, stack)
    assert code == 0 and set(hops(report).values()) == {True}, report
    assert report["warnings"] == [] or all("cannot decide" not in w for w in report["warnings"])

    # A boundary that leaves PutItem out: red before traffic, naming the boundary; the order waits for the DLQ.
    narrow = boundary(aws, f"{stack}-narrow", ["sqs:*", "logs:*", "dynamodb:GetItem"])
    iam.put_role_permissions_boundary(RoleName=role, PermissionsBoundary=narrow)
    code, report = verify(cli, stack, timeout=5)
    assert code == 1
    failed = next(c for c in report["checks"] if c["passed"] is False)
    assert failed["hop"] == "dynamodb", report
    assert "dynamodb:PutItem" in failed["evidence"] and f"permissions boundary {stack}-narrow" in failed["evidence"]


@pytest.mark.slow
def test_a_queue_policy_that_only_an_organization_could_satisfy_is_refused_locally(cli, aws, stack):
    """The embedded AWS has no organization: aws:PrincipalOrgID is absent, so an org-only queue policy refuses SNS
    (as AWS refuses a publisher outside the organization) and verify names the wiring, not "cannot decide"."""
    cli("--local", "--stack", stack, "up")
    queue = f"{stack}-OrderQueue"
    queue_arn = f"arn:aws:sqs:{REGION}:{aws.account}:{queue}"
    org_only = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": queue_arn,
         "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-example"}}}]}  # fmt: skip
    aws.client("sqs").set_queue_attributes(QueueUrl=aws.queue_url(queue), Attributes={"Policy": json.dumps(org_only)})
    code, report = verify(cli, stack, timeout=2)
    assert code == 1 and hops(report)["wiring"] is False, report
