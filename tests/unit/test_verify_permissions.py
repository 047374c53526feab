"""verify's static checks (flow/permissions.py) against moto: the role, its policies and the handler, judged by
IAM's rules before any traffic."""

from __future__ import annotations

import json

import pytest

from orderflow.flow.permissions import problems
from orderflow.provision import operations
from orderflow.provision.policies import function_inline_policies, required_permissions

pytestmark = pytest.mark.usefixtures("mocked")


@pytest.fixture
def stack(ctx):
    operations.converge(ctx)
    return ctx


def _hops(ctx):
    return [(p.hop, p.evidence) for p in problems(ctx)]


def test_the_policies_up_writes_allow_everything_the_pipeline_needs(stack):
    assert problems(stack) == []
    # And every required permission comes from one of those policies: removing any of them is noticed.
    for name in function_inline_policies(stack.config, stack.arns):
        stack.client("iam").delete_role_policy(RoleName=stack.config.role_name, PolicyName=name)
        assert problems(stack), name
        operations.converge(stack)


@pytest.mark.parametrize(
    ("policy", "hop", "action"),
    [
        ("DynamoPutItemPolicy", "dynamodb", "dynamodb:PutItem"),
        ("SQSReceiveMessagePolicy", "lambda", "sqs:ReceiveMessage"),
        ("SQSDeleteMessagePolicy", "lambda", "sqs:DeleteMessage"),
        ("CloudWatchLogsWritePolicy", "logs", "logs:CreateLogStream"),
    ],
)
def test_a_missing_inline_policy_breaks_the_hop_that_needs_it(stack, policy, hop, action):
    stack.client("iam").delete_role_policy(RoleName=stack.config.role_name, PolicyName=policy)
    [(found_hop, evidence)] = _hops(stack)
    assert found_hop == hop and action in evidence and "no policy allows it" in evidence


def test_an_attached_managed_policy_counts_and_an_explicit_deny_wins(stack):
    iam, role = stack.client("iam"), stack.config.role_name
    iam.delete_role_policy(RoleName=role, PolicyName="DynamoPutItemPolicy")
    grant = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}]}
    arn = iam.create_policy(PolicyName="Broad", PolicyDocument=json.dumps(grant))["Policy"]["Arn"]
    iam.attach_role_policy(RoleName=role, PolicyArn=arn)
    assert problems(stack) == []
    deny = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "dynamodb:PutItem", "Resource": "*"}]}
    iam.put_role_policy(RoleName=role, PolicyName="NoWrites", PolicyDocument=json.dumps(deny))
    [(hop, evidence)] = _hops(stack)
    assert hop == "dynamodb" and "an explicit Deny" in evidence


def test_a_role_lambda_cannot_assume_and_a_wrong_handler_break_the_lambda_hop(stack):
    ec2 = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    stack.client("iam").update_assume_role_policy(RoleName=stack.config.role_name, PolicyDocument=json.dumps(ec2))
    stack.client("lambda").update_function_configuration(FunctionName=stack.config.function_name, Handler="x.y")
    assert [hop for hop, _ in _hops(stack)] == ["lambda", "lambda"]
    assert "handler is 'x.y'" in _hops(stack)[0][1]
    assert "trust policy" in _hops(stack)[1][1]


def test_required_permissions_name_concrete_arns_of_this_stack(ctx):
    for permission in required_permissions(ctx.config, ctx.arns):
        assert permission.resource.startswith(f"arn:aws:{permission.action.split(':')[0]}:{ctx.arns.region}:")
        assert "*" not in permission.resource
