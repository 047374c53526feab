"""IAM and queue policy documents, as pure functions of the stack's ARNs.

Every statement names one exact resource of this stack: the guide's `Resource: "*"` and hard-coded account are
deliberately not copied.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from orderflow.arns import Arns, parse_arn
from orderflow.stack import StackConfig

VERSION = "2012-10-17"
QUEUE_POLICY_SID = "orderflow-AllowTopicToSend"
LOGS_POLICY_NAME = "CloudWatchLogsWritePolicy"


def _allow(action: str | list[str], resource: str) -> dict[str, Any]:
    return {"Version": VERSION, "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]}


def lambda_trust_policy() -> dict[str, Any]:
    return {
        "Version": VERSION,
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }


def function_inline_policies(config: StackConfig, arns: Arns) -> dict[str, dict[str, Any]]:
    """The role's inline policies, named as in the seed guide, each scoped to exactly one ARN."""
    queue_arn = arns.queue(config.queue_name)
    return {
        "DynamoPutItemPolicy": _allow("dynamodb:PutItem", arns.table(config.table_name)),
        "SQSDeleteMessagePolicy": _allow("sqs:DeleteMessage", queue_arn),
        "SQSGetQueueAttributesPolicy": _allow("sqs:GetQueueAttributes", queue_arn),
        "SQSReceiveMessagePolicy": _allow("sqs:ReceiveMessage", queue_arn),
        # The log group is created by `up`, so CreateLogGroup is not needed.
        LOGS_POLICY_NAME: _allow(
            ["logs:CreateLogStream", "logs:PutLogEvents"], arns.log_streams(config.log_group_name)
        ),
    }


@dataclass(frozen=True)
class Permission:
    """One thing the execution role must allow, the hop of the pipeline that breaks without it, and how."""

    hop: str
    action: str
    resource: str
    without: str

    @property
    def short_resource(self) -> str:
        """`table/Orders`, `OrderQueue`, `log-group:/aws/lambda/…`: the part a reader recognises."""
        return parse_arn(self.resource).resource.split(":log-stream:")[0]


def required_permissions(config: StackConfig, arns: Arns) -> list[Permission]:
    """What the function's role must be allowed, on concrete ARNs (a log stream stands for any of the group's)."""
    queue = arns.queue(config.queue_name)
    stream = f"{arns.log_group(config.log_group_name)}:log-stream:any"
    return [
        Permission("lambda", "sqs:ReceiveMessage", queue, "the trigger cannot receive: orders wait in the queue"),
        Permission("lambda", "sqs:DeleteMessage", queue, "processed orders are never deleted and end in the DLQ"),
        Permission("lambda", "sqs:GetQueueAttributes", queue, "Lambda refuses to create the trigger"),
        Permission("dynamodb", "dynamodb:PutItem", arns.table(config.table_name), "no order can be written"),
        Permission("logs", "logs:CreateLogStream", stream, "the function's log lines never reach CloudWatch Logs"),
        Permission("logs", "logs:PutLogEvents", stream, "the function's log lines never reach CloudWatch Logs"),
    ]


def topic_send_statement(queue_arn: str, topic_arn: str) -> dict[str, Any]:
    """Lets only our topic deliver to the queue. Without it SNS drops every message silently on real AWS."""
    return {
        "Sid": QUEUE_POLICY_SID,
        "Effect": "Allow",
        "Principal": {"Service": "sns.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": queue_arn,
        "Condition": {"ArnEquals": {"aws:SourceArn": topic_arn}},
    }


def parse_policy(text: str | None) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        policy = json.loads(text)
    except json.JSONDecodeError:
        return None
    return policy if isinstance(policy, dict) else None


def our_statement(policy: dict[str, Any] | None) -> dict[str, Any] | None:
    for statement in (policy or {}).get("Statement", []):
        if isinstance(statement, dict) and statement.get("Sid") == QUEUE_POLICY_SID:
            return statement
    return None


def with_statement(policy: dict[str, Any] | None, statement: dict[str, Any]) -> dict[str, Any]:
    """The policy with our statement in place, keeping every statement someone else added."""
    others = [
        s for s in (policy or {}).get("Statement", []) if not (isinstance(s, dict) and s.get("Sid") == statement["Sid"])
    ]
    return {"Version": (policy or {}).get("Version", VERSION), "Statement": [*others, statement]}


def without_our_statement(policy: dict[str, Any] | None) -> dict[str, Any] | None:
    """The policy minus our statement; None when nothing would be left."""
    others = [
        s for s in (policy or {}).get("Statement", []) if not (isinstance(s, dict) and s.get("Sid") == QUEUE_POLICY_SID)
    ]
    return {"Version": (policy or {}).get("Version", VERSION), "Statement": others} if others else None
