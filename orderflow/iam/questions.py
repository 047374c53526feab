"""The questions orderflow asks of IAM about its own stack: may Lambda assume the role, may the topic send."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orderflow.arns import parse_arn
from orderflow.iam.context import service_context
from orderflow.iam.evaluation import Policies, Principal, Request, Verdict, decide

LAMBDA_SERVICE = Principal("Service", "lambda.amazonaws.com")
SNS_SERVICE = Principal("Service", "sns.amazonaws.com")


def lambda_may_assume(trust: Mapping[str, Any] | None, role_arn: str) -> bool:
    """Does the role's trust policy let Lambda assume it (as it must, to run a function with it)?"""
    # The function's region is not known here: a trust policy that reads aws:RequestedRegion finds it absent.
    context = {"aws:PrincipalIsAWSService": "true", "aws:PrincipalServiceName": LAMBDA_SERVICE.id,
               "aws:SecureTransport": "true"}  # fmt: skip
    request = Request("sts:AssumeRole", role_arn, LAMBDA_SERVICE, context)
    return decide(Policies(resource=trust), request).allowed


def topic_may_send(
    policy: Mapping[str, Any] | None, queue_arn: str, topic_arn: str, undecidable: frozenset[str] = frozenset()
) -> Verdict:
    """Would SQS accept SNS's delivery from this topic? SNS sends as the service principal sns.amazonaws.com, with
    the topic as aws:SourceArn; only the queue policy can allow that."""
    region = parse_arn(queue_arn).region
    context = service_context(SNS_SERVICE, topic_arn, region, queue_arn)
    return decide(Policies(resource=policy), Request("sqs:SendMessage", queue_arn, SNS_SERVICE, context, undecidable))
