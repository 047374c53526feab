"""What `up` builds, as infrastructure-as-code resources: derived from the same typed operations `up` runs.

The stack is planned as if nothing existed (every resource's `create_operations`), with the account, region and
partition left as CloudFormation's pseudo parameters. Each create call then becomes the CloudFormation resource that
makes the same thing, by a table keyed by the call's IAM action: a resource that gains a call must gain a row here,
or the export refuses (and a test fails), so the template cannot silently drift from `up`.

CloudFormation's resource shapes are the model every format renders from (CloudFormation and SAM directly,
Terraform by its own mapping): they are AWS's own schema of these resources.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from orderflow.arns import Arns
from orderflow.provision.base import Context
from orderflow.provision.ops import Call
from orderflow.provision.package import LambdaPackage, build_package
from orderflow.provision.planner import RESOURCES
from orderflow.stack import StackConfig, tag_list

# The template's own placeholders for where it is deployed: CloudFormation substitutes them (`Fn::Sub`), the
# Terraform export maps them to its data sources.
PSEUDO = Arns("${AWS::Partition}", "${AWS::Region}", "${AWS::AccountId}")


class UntranslatableCall(Exception):
    """A create call with no row in the translation table: the export would miss what `up` does."""


@dataclass
class TemplateResource:
    """One resource of the template: its logical id, CloudFormation type and properties (values may hold the
    pseudo-parameter placeholders), the orderflow resource it comes from, and the orderflow resources it needs."""

    logical_id: str
    type: str
    properties: dict[str, Any]
    key: str
    depends_on: tuple[str, ...] = ()
    calls: list[str] = field(default_factory=list)  # the IAM actions of the calls it stands for


@dataclass(frozen=True)
class StackModel:
    config: StackConfig
    resources: list[TemplateResource]
    package: LambdaPackage

    def by_key(self, key: str) -> list[TemplateResource]:
        return [r for r in self.resources if r.key == key]

    def get(self, logical_id: str) -> TemplateResource:
        return next(r for r in self.resources if r.logical_id == logical_id)


def blank_account_context(config: StackConfig, package: LambdaPackage) -> Context:
    """A planning context for an account where nothing exists yet, placed nowhere in particular."""
    ctx = Context(aws=None, config=config, package=package)  # type: ignore[arg-type]  # planning makes no call
    ctx.__dict__["arns"] = PSEUDO  # the cached property, without asking STS
    # The subscription looks for the queue's existing policy; in a blank account there is none.
    ctx.read_cache = {("queue", config.queue_name): None}
    return ctx


def stack_model(config: StackConfig, package: LambdaPackage | None = None) -> StackModel:
    """Every resource `up` creates for this stack and its settings, as template resources, in `up`'s order."""
    package = package or build_package()
    ctx = blank_account_context(config, package)
    resources: list[TemplateResource] = []
    for resource in RESOURCES:
        for op in resource.create_operations(ctx, None):
            if not isinstance(op, Call):
                continue  # waits and pauses: CloudFormation waits for each resource itself
            translate = TRANSLATIONS.get(op.action)
            if translate is None:
                raise UntranslatableCall(f"{op.action} ({resource.kind}) has no template equivalent")
            translate(op, resource.key, resource.depends_on, resources)
    return StackModel(config, resources, package)


def logical_id(key: str) -> str:
    """`alerts_topic` -> `AlertsTopic`."""
    return "".join(part.capitalize() for part in key.split("_"))


def _policy(value: str) -> dict[str, Any]:
    return json.loads(value)


def _add(
    resources: list[TemplateResource],
    call: Call,
    key: str,
    depends_on: tuple[str, ...],
    type_: str,
    properties: dict[str, Any],
    suffix: str = "",
) -> TemplateResource:
    resource = TemplateResource(logical_id(key) + suffix, type_, properties, key, depends_on, [call.action])
    resources.append(resource)
    return resource


def _owner(resources: list[TemplateResource], key: str, type_: str) -> TemplateResource:
    return next(r for r in resources if r.key == key and r.type == type_)


def _table(call: Call, key: str, deps: tuple[str, ...], out: list[TemplateResource]) -> None:
    _add(out, call, key, deps, "AWS::DynamoDB::Table", dict(call.params))


def _topic(call: Call, key: str, deps: tuple[str, ...], out: list[TemplateResource]) -> None:
    p = call.params
    _add(out, call, key, deps, "AWS::SNS::Topic", {"TopicName": p["Name"], "Tags": p["Tags"]})


def _tag_topic(call: Call, key: str, deps: tuple[str, ...], out: list[TemplateResource]) -> None:
    """A tag `up` adds to a topic after creating it (the alerts topic's record of its address): one more of its Tags."""
    topic = _owner(out, key, "AWS::SNS::Topic")
    topic.properties["Tags"] = [*topic.properties["Tags"], *call.params["Tags"]]
    topic.calls.append(call.action)


def _subscribe(call: Call, key: str, deps: tuple[str, ...], out: list[TemplateResource]) -> None:
    p = call.params
    properties = {"TopicArn": p["TopicArn"], "Protocol": p["Protocol"], "Endpoint": p["Endpoint"]}
    # the email subscription belongs to the alerts topic: `AlertsTopicSubscription`
    _add(out, call, key, deps, "AWS::SNS::Subscription", properties, "Subscription" if key != "subscription" else "")


# SQS attributes are strings in the API and typed properties in CloudFormation.
_QUEUE_NUMBERS = ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "ReceiveMessageWaitTimeSeconds")


def _queue(call: Call, key: str, deps: tuple[str, ...], out: list[TemplateResource]) -> None:
    p = call.params
    attributes = dict(p.get("Attributes", {}))
    policy = attributes.pop("Policy", None)
    properties: dict[str, Any] = {"QueueName": p["QueueName"]}
    for name, value in attributes.items():
        properties[name] = int(value) if name in _QUEUE_NUMBERS else _policy(value)
    properties["Tags"] = tag_list(p.get("tags", {}))
    queue = _add(out, call, key, deps, "AWS::SQS::Queue", properties)
    if policy is not None:
        # CloudFormation sets a queue's policy with its own resource type, not a queue property.
        document = {"Queues": [{"Ref": queue.logical_id}], "PolicyDocument": _policy(policy)}  # Ref: its URL
        policy_resource = _add(out, call, key, (), "AWS::SQS::QueuePolicy", document, "Policy")  # refs its queue
        policy_resource.calls.clear()  # it stands for the call's Policy attribute; the queue stands for the call


def _alarm(call: Call, key: str, deps: tuple[str, ...], out: list[TemplateResource]) -> None:
    _add(out, call, key, deps, "AWS::CloudWatch::Alarm", dict(call.params))


def _role(call: Call, key: str, deps: tuple[str, ...], out: list[TemplateResource]) -> None:
    p = dict(call.params)
    p["AssumeRolePolicyDocument"] = _policy(p["AssumeRolePolicyDocument"])
    _add(out, call, key, deps, "AWS::IAM::Role", p)


def _role_policy(call: Call, key: str, deps: tuple[str, ...], out: list[TemplateResource]) -> None:
    p = call.params
    properties = {
        "RoleName": p["RoleName"],
        "PolicyName": p["PolicyName"],
        "PolicyDocument": _policy(p["PolicyDocument"]),
    }
    _add(out, call, key, (), "AWS::IAM::RolePolicy", properties, p["PolicyName"])  # references its role


def _log_group(call: Call, key: str, deps: tuple[str, ...], out: list[TemplateResource]) -> None:
    p = call.params
    _add(out, call, key, deps, "AWS::Logs::LogGroup", {"LogGroupName": p["logGroupName"], "Tags": tag_list(p["tags"])})


def _retention(call: Call, key: str, deps: tuple[str, ...], out: list[TemplateResource]) -> None:
    group = _owner(out, key, "AWS::Logs::LogGroup")
    group.properties["RetentionInDays"] = call.params["retentionInDays"]
    group.calls.append(call.action)


def _function(call: Call, key: str, deps: tuple[str, ...], out: list[TemplateResource]) -> None:
    p = dict(call.params)
    p["Code"] = "@code"  # where the package is depends on the format: S3 parameters, CodeUri, archive_file
    p["Tags"] = tag_list(p["Tags"])
    _add(out, call, key, deps, "AWS::Lambda::Function", p)


def _mapping(call: Call, key: str, deps: tuple[str, ...], out: list[TemplateResource]) -> None:
    _add(out, call, key, deps, "AWS::Lambda::EventSourceMapping", dict(call.params))


Translate = Callable[[Call, str, tuple[str, ...], list[TemplateResource]], None]

TRANSLATIONS: dict[str, Translate] = {
    "dynamodb:CreateTable": _table,
    "sns:CreateTopic": _topic,
    "sns:Subscribe": _subscribe,
    "sns:TagResource": _tag_topic,
    "sqs:CreateQueue": _queue,
    "cloudwatch:PutMetricAlarm": _alarm,
    "iam:CreateRole": _role,
    "iam:PutRolePolicy": _role_policy,
    "logs:CreateLogGroup": _log_group,
    "logs:PutRetentionPolicy": _retention,
    "lambda:CreateFunction": _function,
    "lambda:CreateEventSourceMapping": _mapping,
}
