"""The CloudFormation resource types an orderflow stack needs and moto's CloudFormation lacks.

moto 5.2 reports `AWS::SQS::QueuePolicy`, `AWS::SNS::Subscription`, `AWS::CloudWatch::Alarm` and
`AWS::IAM::RolePolicy` CREATE_COMPLETE with no physical id and creates nothing: a false green. These are moto's own
extension point (a `CloudFormationModel` subclass names its `cloudformation_type()`; moto finds its models by
subclass), each acting through the service backend the API uses, with the `Ref`, `Fn::GetAtt` and physical ids of
the CloudFormation reference (docs/fidelity.md cites each).

Registration is additive: the classes exist once this module is imported (by the embedded server), and they add
only types moto would otherwise ignore. `check_unclaimed()` proves at start-up that moto still has no model of its
own for them, so ours never shadows one.
"""

from __future__ import annotations

import contextlib
import json
from typing import Any

from moto.cloudformation import parsing
from moto.cloudwatch.models import Dimension, Metric, MetricDataQuery, MetricStat, cloudwatch_backends
from moto.core.common_models import CloudFormationModel
from moto.iam.models import iam_backends
from moto.sns.models import sns_backends
from moto.sqs.models import sqs_backends
from moto.utilities.utils import get_partition

from orderflow.arns import parse_arn
from orderflow.errors import EndpointError
from orderflow.stack import CLOUDFORMATION_STACK_TAG


def _document(value: Any) -> str:
    """A policy as the API takes it: CloudFormation accepts the document as JSON or as a string."""
    return value if isinstance(value, str) else json.dumps(value)


def _queue_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


class _Model:
    """What every added type shares: a physical id, the attributes `Fn::GetAtt` may ask, no name property (a
    mixin: moto finds its models as direct subclasses of CloudFormationModel)."""

    physical_resource_id: str = ""
    ATTRIBUTES: dict[str, str] = {}  # GetAtt attribute -> the instance attribute holding it

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr in cls.ATTRIBUTES

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name not in self.ATTRIBUTES:
            raise UnformattedGetAttTemplateException()
        return getattr(self, self.ATTRIBUTES[attribute_name])

    def is_created(self) -> bool:
        return True

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str, **kwargs: Any
    ) -> Any:
        # resource_name: moto's physical name for a type with no name property (`stack-LogicalId-SUFFIX`)
        return cls(account_id, region_name, resource_name, cloudformation_json["Properties"])  # type: ignore[call-arg]

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc, override]
        cls,
        original_resource: Any,
        new_resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
    ) -> Any:
        # Each of these is replaced as a whole: remove what the old one set, then set the new one.
        original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(new_resource_name, cloudformation_json, account_id, region_name)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc, override]
        cls, resource_name: str, cloudformation_json: dict[str, Any], account_id: str, region_name: str
    ) -> None:
        """Unused: moto deletes through the instance's `delete` when it has one."""

    def delete(self, account_id: str, region_name: str) -> None:
        raise NotImplementedError


class QueuePolicy(_Model, CloudFormationModel):
    """AWS::SQS::QueuePolicy: sets the Policy attribute of each queue in `Queues` (their URLs); deleting it removes
    the policy. Ref: the resource's id."""

    def __init__(self, account_id: str, region_name: str, resource_name: str, properties: dict[str, Any]) -> None:
        self.queues: list[str] = properties["Queues"]
        self.physical_resource_id = resource_name
        document = _document(properties["PolicyDocument"])
        backend = sqs_backends[account_id][region_name]
        for url in self.queues:
            backend.set_queue_attributes(_queue_name(url), {"Policy": document})

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SQS::QueuePolicy"

    def delete(self, account_id: str, region_name: str) -> None:
        backend = sqs_backends[account_id][region_name]
        for url in self.queues:
            name = _queue_name(url)
            if name in backend.queues:
                backend.set_queue_attributes(name, {"Policy": ""})


class Subscription(_Model, CloudFormationModel):
    """AWS::SNS::Subscription: subscribes `Endpoint` to `TopicArn` with `Protocol` and the attributes given.
    Ref: the subscription's ARN."""

    ATTRIBUTES = {"Arn": "physical_resource_id"}
    _SETTABLE = ("RawMessageDelivery", "FilterPolicy", "FilterPolicyScope", "RedrivePolicy", "DeliveryPolicy")

    def __init__(self, account_id: str, region_name: str, resource_name: str, properties: dict[str, Any]) -> None:
        topic_arn = properties["TopicArn"]
        arn = parse_arn(topic_arn)  # a topic of another region is subscribed in its own region, as SNS does
        backend = sns_backends[arn.account][arn.region]
        subscription = backend.subscribe(topic_arn, properties["Endpoint"], properties["Protocol"])
        self.physical_resource_id = subscription.arn
        self._backend = backend
        for name in self._SETTABLE:
            if name in properties:
                value = properties[name]
                text = value if isinstance(value, str) else json.dumps(value)
                if isinstance(value, bool):
                    text = "true" if value else "false"
                backend.set_subscription_attributes(subscription.arn, name, text)

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::SNS::Subscription"

    def delete(self, account_id: str, region_name: str) -> None:
        self._backend.unsubscribe(self.physical_resource_id)


class RolePolicy(_Model, CloudFormationModel):
    """AWS::IAM::RolePolicy: the inline policy `PolicyName` of role `RoleName` (IAM validates the document as
    PutRolePolicy does)."""

    def __init__(self, account_id: str, region_name: str, resource_name: str, properties: dict[str, Any]) -> None:
        self.role_name, self.policy_name = properties["RoleName"], properties["PolicyName"]
        self.physical_resource_id = f"{self.policy_name}-{self.role_name}"
        self._backend = iam_backends[account_id][get_partition(region_name)]  # IAM is global: kept per partition
        self._backend.put_role_policy(self.role_name, self.policy_name, _document(properties["PolicyDocument"]))

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::IAM::RolePolicy"

    def delete(self, account_id: str, region_name: str) -> None:
        from moto.iam.exceptions import NotFoundException

        with contextlib.suppress(NotFoundException):  # the role went first: its inline policies went with it
            self._backend.delete_role_policy(self.role_name, self.policy_name)


class Alarm(_Model, CloudFormationModel):
    """AWS::CloudWatch::Alarm: PutMetricAlarm with the template's properties (a single metric or `Metrics`).
    Ref: the alarm's name; GetAtt Arn."""

    ATTRIBUTES = {"Arn": "arn"}

    def __init__(self, account_id: str, region_name: str, resource_name: str, p: dict[str, Any]) -> None:
        self._backend = cloudwatch_backends[account_id][region_name]
        self.physical_resource_id = p.get("AlarmName") or resource_name
        alarm = self._backend.put_metric_alarm(
            name=self.physical_resource_id,
            namespace=p.get("Namespace"),
            metric_name=p.get("MetricName"),
            comparison_operator=p["ComparisonOperator"],
            evaluation_periods=int(p["EvaluationPeriods"]),
            period=p.get("Period"),
            threshold=float(p["Threshold"]) if "Threshold" in p else None,
            statistic=p.get("Statistic"),
            description=p.get("AlarmDescription"),
            dimensions=[Dimension(d["Name"], d["Value"]) for d in p.get("Dimensions", [])],
            alarm_actions=p.get("AlarmActions", []),
            metric_data_queries=[_query(m) for m in p["Metrics"]] if "Metrics" in p else None,
            datapoints_to_alarm=int(p["DatapointsToAlarm"]) if "DatapointsToAlarm" in p else None,
            extended_statistic=p.get("ExtendedStatistic"),
            ok_actions=p.get("OKActions", []),
            insufficient_data_actions=p.get("InsufficientDataActions", []),
            unit=p.get("Unit"),
            actions_enabled=_bool(p.get("ActionsEnabled", True)),
            treat_missing_data=p.get("TreatMissingData"),
            evaluate_low_sample_count_percentile=p.get("EvaluateLowSampleCountPercentile"),
            threshold_metric_id=p.get("ThresholdMetricId"),
            tags=p.get("Tags", []),
        )
        self.arn = alarm.alarm_arn

    @staticmethod
    def cloudformation_type() -> str:
        return "AWS::CloudWatch::Alarm"

    def delete(self, account_id: str, region_name: str) -> None:
        self._backend.delete_alarms([self.physical_resource_id])


def _bool(value: Any) -> bool:
    return value if isinstance(value, bool) else str(value).lower() == "true"


def _query(m: dict[str, Any]) -> MetricDataQuery:
    """One entry of the alarm's `Metrics`, as moto's PutMetricAlarm handler builds it."""
    stat = m.get("MetricStat")
    metric_stat = None
    if stat:
        metric = stat["Metric"]
        dimensions = [Dimension(d["Name"], d["Value"]) for d in metric.get("Dimensions", [])]
        metric_stat = MetricStat(
            metric=Metric(metric["MetricName"], metric.get("Namespace"), dimensions),
            period=stat.get("Period"),
            stat=stat.get("Stat"),
            unit=stat.get("Unit"),
        )
    return MetricDataQuery(
        query_id=m.get("Id"),
        label=m.get("Label"),
        period=m.get("Period"),
        return_data=_bool(m.get("ReturnData", True)),
        expression=m.get("Expression"),
        metric_stat=metric_stat,
    )


ADDED = (QueuePolicy, Subscription, RolePolicy, Alarm)


def check_unclaimed() -> None:
    """Each added type is moto's only model of it: a moto that gained its own would be shadowed by ours."""
    parsing.get_model_list.cache_clear()  # moto caches its models: a cache filled before the import misses ours
    parsing.get_model_map.cache_clear()
    parsing.get_name_type_map.cache_clear()
    for model in ADDED:
        claimants = [m for m in parsing.get_model_list() if m.cloudformation_type() == model.cloudformation_type()]
        if claimants != [model]:
            from moto import __version__

            raise EndpointError(
                f"moto {__version__} has its own CloudFormation model of {model.cloudformation_type()}; orderflow's "
                "embedded AWS was written for moto 5.2, which has none"
            )


# moto's own models drop what the CloudFormation reference says they set: the topic's and the function's Tags, the
# function's Architectures, and a log group's `Fn::GetAtt Arn` is the streams' form on AWS (`…:log-group:NAME:*`).
TARGETS = (
    ("moto.sns.models", "Topic", "create_from_cloudformation_json", ("cloudformation_json",)),
    ("moto.awslambda.models", "LambdaFunction", "create_from_cloudformation_json", ("cloudformation_json",)),
    ("moto.awslambda.models", "LambdaBackend", "tag_resource", ("self", "resource_arn", "tags")),
    ("moto.sns.models", "SNSBackend", "tag_resource", ("self", "resource_arn", "tags")),
    ("moto.logs.models", "LogGroup", "get_cfn_attribute", ("self", "attribute_name")),
    (
        "moto.cloudformation.parsing",
        "ResourceMap",
        "__getitem__",
        ("self._resource_json_map", "parse_and_create_resource"),
    ),
    ("moto.dynamodb.models", "DynamoDBBackend", "tag_resource", ("self", "arn", "tags")),
    ("moto.sqs.models", "SQSBackend", "tag_queue", ("self", "queue_name", "tags")),
    ("moto.logs.models", "LogsBackend", "tag_log_group", ("self", "log_group_name", "tags")),
    ("moto.cloudwatch.models", "CloudWatchBackend", "tag_resource", ("self", "arn", "tags")),
)


def _tags(properties: dict[str, Any]) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in properties.get("Tags", [])}


def properties_moto_drops() -> list[Any]:
    """The patches (built from moto as it is now) that make moto's Topic, Function and LogGroup models set what
    CloudFormation sets."""
    from moto.awslambda.models import LambdaFunction, lambda_backends
    from moto.logs.models import LogGroup
    from moto.sns.models import Topic

    from orderflow.local.patches.patching import Patch

    create_topic = Topic.create_from_cloudformation_json
    create_function = LambdaFunction.create_from_cloudformation_json
    log_group_attribute = LogGroup.get_cfn_attribute

    def topic_with_tags(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):  # type: ignore[no-untyped-def]
        topic = create_topic(resource_name, cloudformation_json, account_id, region_name, **kwargs)
        tags = _tags(cloudformation_json["Properties"])
        if tags:
            sns_backends[account_id][region_name].tag_resource(topic.arn, tags)
        return topic

    def function_as_declared(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):  # type: ignore[no-untyped-def]
        function = create_function(resource_name, cloudformation_json, account_id, region_name, **kwargs)
        properties = cloudformation_json["Properties"]
        if "Architectures" in properties:
            function.architectures = properties["Architectures"]
        tags = _tags(properties)
        if tags:
            lambda_backends[account_id][region_name].tag_resource(function.function_arn, tags)
        return function

    def log_group_streams_arn(self, attribute_name):  # type: ignore[no-untyped-def]
        value = log_group_attribute(self, attribute_name)
        return f"{value}:*" if attribute_name == "Arn" and not value.endswith(":*") else value

    return [
        Patch(Topic, "create_from_cloudformation_json", classmethod(topic_with_tags)),
        Patch(LambdaFunction, "create_from_cloudformation_json", classmethod(function_as_declared)),
        Patch(LogGroup, "get_cfn_attribute", log_group_streams_arn),
    ]


# CloudFormation tags every resource it creates with the stack it belongs to (CloudFormation Template Reference,
# "Resource tag": aws:cloudformation:logical-id, aws:cloudformation:stack-id, aws:cloudformation:stack-name);
# moto does not. orderflow reads them to refuse changing a stack CloudFormation manages.


def _tag(resource_type: str, resource: Any, account_id: str, region_name: str, tags: dict[str, str]) -> None:
    """Add `tags` to a resource CloudFormation just created, through its service's backend."""
    from moto.awslambda.models import lambda_backends
    from moto.dynamodb.models import dynamodb_backends
    from moto.logs.models import logs_backends

    match resource_type:
        case "AWS::DynamoDB::Table":
            dynamodb_backends[account_id][region_name].tag_resource(resource.table_arn, tags)
        case "AWS::SNS::Topic":
            sns_backends[account_id][region_name].tag_resource(resource.arn, tags)
        case "AWS::SQS::Queue":
            sqs_backends[account_id][region_name].tag_queue(resource.name, tags)
        case "AWS::Lambda::Function":
            lambda_backends[account_id][region_name].tag_resource(resource.function_arn, tags)
        case "AWS::IAM::Role":
            # IAM refuses `aws:` keys from callers (moto checks it too); CloudFormation is AWS itself
            role = iam_backends[account_id][get_partition(region_name)].get_role(resource.name)
            role.tags = [t for t in role.tags if t["Key"] not in tags] + [
                {"Key": k, "Value": v} for k, v in tags.items()
            ]
        case "AWS::Logs::LogGroup":
            logs_backends[account_id][region_name].tag_log_group(resource.name, tags)
        case "AWS::CloudWatch::Alarm":
            cloudwatch_backends[account_id][region_name].tag_resource(resource.arn, tags)


def stack_tags() -> list[Any]:
    """The patch that tags what CloudFormation creates with its stack."""
    from orderflow.local.patches.patching import Patch

    create = parsing.parse_and_create_resource

    def create_tagged(logical_id, resource_json, resources_map, account_id, region_name):  # type: ignore[no-untyped-def]
        resource = create(logical_id, resource_json, resources_map, account_id, region_name)
        if resource is not None:
            tags = {
                "aws:cloudformation:logical-id": logical_id,
                "aws:cloudformation:stack-id": resources_map.stack_id,
                CLOUDFORMATION_STACK_TAG: resources_map["AWS::StackName"],
            }
            _tag(resource_json["Type"], resource, account_id, region_name, tags)
        return resource

    return [Patch(parsing, "parse_and_create_resource", create_tagged)]  # type: ignore[arg-type]
