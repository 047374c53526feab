"""The stack as Terraform (HCL, AWS provider): rendered from the CloudFormation template of the same model, so both
formats hold the same resources, properties and references.

Each CloudFormation type maps to its `aws_*` resource; `Ref`/`Fn::GetAtt` become references to the other resource's
attributes (which order the creation in Terraform too), `DependsOn` becomes `depends_on`, the pseudo parameters
become the `aws_partition`, `aws_region` and `aws_caller_identity` data sources, and the function's code is an
`archive_file` over the handler's source.
"""

from __future__ import annotations

import json
import re
from typing import Any

from orderflow.iac import cloudformation
from orderflow.iac.model import StackModel

TF_TYPES = {
    "AWS::DynamoDB::Table": "aws_dynamodb_table",
    "AWS::SNS::Topic": "aws_sns_topic",
    "AWS::SNS::Subscription": "aws_sns_topic_subscription",
    "AWS::SQS::Queue": "aws_sqs_queue",
    "AWS::SQS::QueuePolicy": "aws_sqs_queue_policy",
    "AWS::CloudWatch::Alarm": "aws_cloudwatch_metric_alarm",
    "AWS::IAM::Role": "aws_iam_role",
    "AWS::IAM::RolePolicy": "aws_iam_role_policy",
    "AWS::Logs::LogGroup": "aws_cloudwatch_log_group",
    "AWS::Lambda::Function": "aws_lambda_function",
    "AWS::Lambda::EventSourceMapping": "aws_lambda_event_source_mapping",
}
# What CloudFormation's `Ref` of each type gives, as the Terraform attribute holding it.
_REF_ATTRIBUTE = {
    "AWS::DynamoDB::Table": "name",
    "AWS::SNS::Topic": "arn",
    "AWS::SQS::Queue": "url",
    "AWS::IAM::Role": "name",
    "AWS::Logs::LogGroup": "name",
    "AWS::Lambda::Function": "function_name",
    "AWS::CloudWatch::Alarm": "alarm_name",
}
_GETATT_ATTRIBUTE = {"Arn": "arn", "QueueName": "name", "TopicName": "name"}
_PSEUDO = {
    "AWS::Partition": "data.aws_partition.current.partition",
    "AWS::Region": "data.aws_region.current.name",
    "AWS::AccountId": "data.aws_caller_identity.current.account_id",
}
ARCHIVE = "data.archive_file.function"


class Expr(str):
    """An HCL expression, written as is (a reference, a function call)."""


def address(logical_id: str, types: dict[str, str]) -> str:
    """`RoleDynamoPutItemPolicy` of type AWS::IAM::RolePolicy -> `aws_iam_role_policy.role_dynamo_put_item_policy`."""
    return f"{TF_TYPES[types[logical_id]]}.{snake(logical_id)}"


def snake(logical_id: str) -> str:
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", logical_id).lower()


def _reference(value: dict[str, Any], types: dict[str, str]) -> str | None:
    """The HCL expression (inside `${}`) of a CloudFormation intrinsic, or None when `value` is not one."""
    if set(value) == {"Ref"}:
        target = value["Ref"]
        return f"{address(target, types)}.{_REF_ATTRIBUTE[types[target]]}"
    if set(value) == {"Fn::GetAtt"}:
        target, attribute = value["Fn::GetAtt"]
        return f"{address(target, types)}.{_GETATT_ATTRIBUTE[attribute]}"
    return None


def _value(value: Any, types: dict[str, str]) -> Any:
    """A template value as HCL: intrinsics become references or interpolated strings."""
    if isinstance(value, dict):
        reference = _reference(value, types)
        if reference is not None:
            target = value.get("Fn::GetAtt", [None])[0]
            if target and types[target] == "AWS::Logs::LogGroup":  # Terraform's log group arn has no `:*`
                return _interpolated("${" + reference + "}:*")
            return Expr(reference)
        if set(value) == {"Fn::Sub"}:
            return _interpolated(
                re.sub(r"\$\{(AWS::\w+)\}", lambda m: "${" + _PSEUDO[m.group(1)] + "}", value["Fn::Sub"])
            )
        return {k: _value(v, types) for k, v in value.items()}
    if isinstance(value, list):
        return [_value(v, types) for v in value]
    return value


def _interpolated(text: str) -> Expr:
    return Expr(json.dumps(text))


def _literal(text: str) -> str:
    # a literal string: `${` and `%{` would start a template in HCL
    return json.dumps(text).replace("${", "$${").replace("%{", "%%{")


def hcl(value: Any, indent: int = 1) -> str:
    """A value as an HCL expression."""
    pad = "  " * indent
    if isinstance(value, Expr):
        return str(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return _literal(value)
    if isinstance(value, list):
        return "[" + ", ".join(hcl(v, indent) for v in value) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        inner = "".join(f"{pad}  {json.dumps(k)} = {hcl(v, indent + 1)}\n" for k, v in value.items())
        return "{\n" + inner + pad + "}"
    raise TypeError(f"no HCL for {value!r}")


def _tags(properties: dict[str, Any]) -> dict[str, Any]:
    return {t["Key"]: t["Value"] for t in properties.get("Tags", [])}


def _jsonencode(document: Any, types: dict[str, str]) -> Expr:
    return Expr(f"jsonencode({hcl(_value(document, types), 1)})")


Body = list[tuple[str, Any]]  # attributes (name, value) and blocks ("block name", Body)


def _table(p: dict[str, Any], v: Any) -> Body:
    hash_key = next(k["AttributeName"] for k in p["KeySchema"] if k["KeyType"] == "HASH")
    body: Body = [("name", p["TableName"]), ("billing_mode", p["BillingMode"]), ("hash_key", hash_key)]
    body += [
        ("block attribute", [("name", a["AttributeName"]), ("type", a["AttributeType"])])
        for a in p["AttributeDefinitions"]
    ]
    return [*body, ("tags", _tags(p))]


def _queue(p: dict[str, Any], v: Any) -> Body:
    body: Body = [("name", p["QueueName"])]
    if "VisibilityTimeout" in p:
        body.append(("visibility_timeout_seconds", p["VisibilityTimeout"]))
    if "MessageRetentionPeriod" in p:
        body.append(("message_retention_seconds", p["MessageRetentionPeriod"]))
    if "RedrivePolicy" in p:
        body.append(("redrive_policy", v(p["RedrivePolicy"], json_document=True)))
    return [*body, ("tags", _tags(p))]


def _alarm(p: dict[str, Any], v: Any) -> Body:
    body: Body = [
        ("alarm_name", p["AlarmName"]),
        ("alarm_description", p["AlarmDescription"]),
        ("actions_enabled", p["ActionsEnabled"]),
        ("alarm_actions", v(p["AlarmActions"])),
        ("evaluation_periods", p["EvaluationPeriods"]),
        ("datapoints_to_alarm", p["DatapointsToAlarm"]),
        ("threshold", p["Threshold"]),
        ("comparison_operator", p["ComparisonOperator"]),
        ("treat_missing_data", p["TreatMissingData"]),
    ]
    for metric in p["Metrics"]:
        query: Body = [("id", metric["Id"])]
        if "Expression" in metric:
            query.append(("expression", metric["Expression"]))
        if "Label" in metric:
            query.append(("label", metric["Label"]))
        query.append(("return_data", metric["ReturnData"]))
        if "MetricStat" in metric:
            stat = metric["MetricStat"]
            dimensions = {d["Name"]: v(d["Value"]) for d in stat["Metric"].get("Dimensions", [])}
            query.append(
                (
                    "block metric",
                    [
                        ("metric_name", stat["Metric"]["MetricName"]),
                        ("namespace", stat["Metric"]["Namespace"]),
                        ("period", stat["Period"]),
                        ("stat", stat["Stat"]),
                        ("dimensions", dimensions),
                    ],
                )
            )
        body.append(("block metric_query", query))
    return [*body, ("tags", _tags(p))]


def _function(p: dict[str, Any], v: Any) -> Body:
    return [
        ("function_name", p["FunctionName"]),
        ("description", p["Description"]),
        ("role", v(p["Role"])),
        ("handler", p["Handler"]),
        ("runtime", p["Runtime"]),
        ("architectures", p["Architectures"]),
        ("timeout", p["Timeout"]),
        ("memory_size", p["MemorySize"]),
        ("filename", Expr(f"{ARCHIVE}.output_path")),
        ("source_code_hash", Expr(f"{ARCHIVE}.output_base64sha256")),
        ("block environment", [("variables", v(p["Environment"]["Variables"]))]),
        ("tags", _tags(p)),
    ]


_BODIES: dict[str, Any] = {
    "AWS::DynamoDB::Table": _table,
    "AWS::SNS::Topic": lambda p, v: [("name", p["TopicName"]), ("tags", _tags(p))],
    "AWS::SNS::Subscription": lambda p, v: [
        ("topic_arn", v(p["TopicArn"])),
        ("protocol", p["Protocol"]),
        ("endpoint", v(p["Endpoint"])),
    ],
    "AWS::SQS::Queue": _queue,
    "AWS::SQS::QueuePolicy": lambda p, v: [
        ("queue_url", v(p["Queues"][0])),
        ("policy", v(p["PolicyDocument"], json_document=True)),
    ],
    "AWS::CloudWatch::Alarm": _alarm,
    "AWS::IAM::Role": lambda p, v: [
        ("name", p["RoleName"]),
        ("description", p["Description"]),
        ("assume_role_policy", v(p["AssumeRolePolicyDocument"], json_document=True)),
        ("tags", _tags(p)),
    ],
    "AWS::IAM::RolePolicy": lambda p, v: [
        ("name", p["PolicyName"]),
        ("role", v(p["RoleName"])),
        ("policy", v(p["PolicyDocument"], json_document=True)),
    ],
    "AWS::Logs::LogGroup": lambda p, v: [
        ("name", p["LogGroupName"]),
        ("retention_in_days", p["RetentionInDays"]),
        ("tags", _tags(p)),
    ],
    "AWS::Lambda::Function": _function,
    "AWS::Lambda::EventSourceMapping": lambda p, v: [
        ("event_source_arn", v(p["EventSourceArn"])),
        ("function_name", v(p["FunctionName"])),
        ("batch_size", p["BatchSize"]),
        ("maximum_batching_window_in_seconds", p["MaximumBatchingWindowInSeconds"]),
        ("function_response_types", p["FunctionResponseTypes"]),
        ("enabled", p["Enabled"]),
        *(
            [("block scaling_config", [("maximum_concurrency", p["ScalingConfig"]["MaximumConcurrency"])])]
            if p.get("ScalingConfig")
            else []
        ),
    ],
}


def _block(header: str, body: Body, indent: int = 0) -> str:
    pad = "  " * indent
    lines = [f"{pad}{header} {{"]
    for name, value in body:
        if name.startswith("block "):
            lines.append(_block(name.removeprefix("block "), value, indent + 1))
        else:
            lines.append(f"{pad}  {name} = {hcl(value, indent + 1)}")
    lines.append(f"{pad}}}")
    return "\n".join(lines)


_PREAMBLE = """\
# orderflow stack {stack}: SNS -> SQS -> Lambda -> DynamoDB order pipeline, exported by `orderflow export`.
#   terraform init && terraform apply
# then prove it: name these resources in orderflow.toml's [stacks.{stack}.resources] and run `orderflow verify`.

terraform {{
  required_providers {{
    aws = {{
      source  = "hashicorp/aws"
      version = ">= 5.0"
    }}
    archive = {{
      source  = "hashicorp/archive"
      version = ">= 2.4"
    }}
  }}
}}

data "aws_partition" "current" {{}}
data "aws_region" "current" {{}}
data "aws_caller_identity" "current" {{}}

data "archive_file" "function" {{
  type        = "zip"
  source_dir  = "${{path.module}}/{code_dir}"
  output_path = "${{path.module}}/function.zip"
  excludes    = ["__init__.py"]
}}
"""


def render(model: StackModel, code_dir: str) -> str:
    """main.tf for the stack."""
    resources = cloudformation.resources(model)
    types = {logical_id: body["Type"] for logical_id, body in resources.items()}

    def v(value: Any, json_document: bool = False) -> Any:
        return _jsonencode(value, types) if json_document else _value(value, types)

    parts = [_PREAMBLE.format(stack=model.config.name, code_dir=code_dir)]
    for logical_id, body in resources.items():
        tf_body = _BODIES[body["Type"]](body["Properties"], v)
        if body.get("DependsOn"):
            tf_body.append(("depends_on", [Expr(address(d, types)) for d in body["DependsOn"]]))
        header = f'resource "{TF_TYPES[body["Type"]]}" "{snake(logical_id)}"'
        parts.append(_block(header, tf_body))
    for logical_id, body in resources.items():
        reference = _reference({"Ref": logical_id}, types) if body["Type"] in _REF_ATTRIBUTE else None
        if reference is None:
            reference = f"{address(logical_id, types)}.id"
        parts.append(_block(f'output "{snake(logical_id)}"', [("value", Expr(reference))]))
    return "\n\n".join(parts) + "\n"
