"""A stack orderflow did not build, resolved to the names orderflow's proofs need.

From a CloudFormation stack: its resources by type (ListStackResources), a type with several resources told apart by
the logical ids `orderflow export` writes (`Queue`/`Dlq`, `Topic`/`AlertsTopic`) or, in a hand-written template, by
what they are to each other (the DLQ is the queue the other's redrive policy names; the alerts topic is the one the
alarm notifies). Every boto3 call for the CloudFormation stack lives here.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from orderflow.arns import parse_arn
from orderflow.aws import Aws, error_code
from orderflow.errors import NotFoundError
from orderflow.stack import REQUIRED_RESOURCE_KEYS

# What ListStackResources calls each type's physical id, as the name orderflow needs: name, ARN, or queue URL.
_TYPES: dict[str, str] = {
    "AWS::DynamoDB::Table": "table",
    "AWS::SNS::Topic": "topic",
    "AWS::SQS::Queue": "queue",
    "AWS::Lambda::Function": "function",
    "AWS::IAM::Role": "role",
    "AWS::Logs::LogGroup": "log_group",
    "AWS::CloudWatch::Alarm": "dlq_alarm",
}
# The logical ids `orderflow export` writes, where a type has two resources.
_EXPORTED_IDS = {"Queue": "queue", "Dlq": "dlq", "Topic": "topic", "AlertsTopic": "alerts_topic"}


def stack_resources(aws: Aws, stack: str) -> list[dict[str, Any]]:
    """The CloudFormation stack's live resources; NotFoundError when there is no such stack."""
    paginator = aws.client("cloudformation").get_paginator("list_stack_resources")
    try:
        pages = list(paginator.paginate(StackName=stack))
    except ClientError as e:
        if error_code(e) == "ValidationError" and "does not exist" in str(e):
            raise NotFoundError(
                f"CloudFormation stack {stack!r} does not exist in {aws.region} (--from-cloudformation)"
            ) from None
        raise
    return [
        r
        for page in pages
        for r in page.get("StackResourceSummaries", [])
        if r.get("PhysicalResourceId") and not r.get("ResourceStatus", "").startswith("DELETE_")
    ]


def _name(resource_type: str, physical_id: str) -> str:
    if resource_type == "AWS::SNS::Topic":
        return parse_arn(physical_id).name
    if resource_type == "AWS::SQS::Queue":
        return physical_id.rstrip("/").rsplit("/", 1)[-1]
    return physical_id


def from_cloudformation(aws: Aws, stack: str) -> dict[str, str]:
    """key -> name of each orderflow resource the CloudFormation stack holds."""
    found: dict[str, list[tuple[str, str]]] = {}
    for r in stack_resources(aws, stack):
        key = _TYPES.get(r["ResourceType"])
        if key:
            found.setdefault(key, []).append(
                (r["LogicalResourceId"], _name(r["ResourceType"], r["PhysicalResourceId"]))
            )
    names: dict[str, str] = {}
    for key, resources in found.items():
        for logical_id, name in resources:
            exported = _EXPORTED_IDS.get(logical_id)
            if exported and key in ("queue", "topic"):
                names[exported] = name
        if key not in names and len(resources) == 1:
            names[key] = resources[0][1]
    queues = [name for _, name in found.get("queue", [])]
    if "queue" not in names and len(queues) == 2:
        names.update(_tell_queues_apart(aws, queues))
    topics = [name for _, name in found.get("topic", [])]
    if "topic" not in names and len(topics) == 2:
        names.update(_tell_topics_apart(aws, topics, names.get("dlq_alarm")))
    missing = [key for key in REQUIRED_RESOURCE_KEYS if key not in names]
    if missing:
        raise NotFoundError(
            f"CloudFormation stack {stack!r} has no {', '.join(missing)} orderflow can tell apart "
            "(an SNS topic, an SQS queue with its DLQ, a Lambda function and a DynamoDB table); name them in "
            "orderflow.toml's [stacks.<stack>.resources] instead"
        )
    return names


def _tell_queues_apart(aws: Aws, queues: list[str]) -> dict[str, str]:
    """The queue whose redrive policy names the other is the order queue; the other is its DLQ."""
    from orderflow.provision.resources.queues import redrive_target_name

    for queue, other in (queues, queues[::-1]):
        if redrive_target_name(aws, queue) == other:
            return {"queue": queue, "dlq": other}
    return {}


def _tell_topics_apart(aws: Aws, topics: list[str], alarm: str | None) -> dict[str, str]:
    """The topic the DLQ alarm notifies is the alerts topic; the other carries the orders."""
    from orderflow.provision.resources.alarm import alarm_action_names

    notified = alarm_action_names(aws, alarm) if alarm else []
    for topic, other in (topics, topics[::-1]):
        if topic in notified:
            return {"alerts_topic": topic, "topic": other}
    return {}
