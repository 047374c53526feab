"""What a request on the wire asks IAM for: the actions it needs, each on its resource, with the condition keys the
service adds — as the Service Authorization Reference lists them for each operation
(https://docs.aws.amazon.com/service-authorization/latest/reference/reference_policies_actions-resources-contextkeys.html).

- An operation needs the action of its own name, except where the reference says otherwise (a batch call needs the
  single call's action, SNS's PublishBatch too; Lambda's Invoke is `lambda:InvokeFunction`).
- Lambda speaks REST: its operation is read from the method and the path.
- An action that has no resource type is asked on `*` (ListQueues, CreateEventSourceMapping, SNS's subscription
  calls: SNS has no subscription resource type).
- CreateFunction and UpdateFunctionConfiguration with a role also need `iam:PassRole` on that role, with
  `iam:PassedToService` = lambda.amazonaws.com; the event source mapping calls carry `lambda:FunctionArn`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlparse

from orderflow.local.server.wire import SignedRequest


@dataclass(frozen=True)
class Need:
    """One action a request needs on one resource, with the condition keys the service puts in the context."""

    action: str
    resource: str
    context: dict[str, str] = field(default_factory=dict)


_RENAMED = {
    ("sqs", "DeleteMessageBatch"): "DeleteMessage",
    ("sqs", "SendMessageBatch"): "SendMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "ChangeMessageVisibility",
    ("lambda", "Invoke"): "InvokeFunction",
    ("sns", "PublishBatch"): "Publish",  # SNS API Reference, PublishBatch: "requires sns:Publish"
}
_SNS_UNSCOPED = {"Unsubscribe", "GetSubscriptionAttributes", "SetSubscriptionAttributes", "ListSubscriptions",
                 "ListTopics", "ConfirmSubscription"}  # fmt: skip
_FUNCTION = r"(?P<function>[^/]+)"
_LAMBDA_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (method, re.compile(f"^/[0-9-]+/{path}/?$"), operation)
    for method, path, operation in (
        ("POST", "functions", "CreateFunction"),
        ("GET", "functions", "ListFunctions"),
        ("GET", f"functions/{_FUNCTION}", "GetFunction"),
        ("DELETE", f"functions/{_FUNCTION}", "DeleteFunction"),
        ("GET", f"functions/{_FUNCTION}/configuration", "GetFunctionConfiguration"),
        ("PUT", f"functions/{_FUNCTION}/configuration", "UpdateFunctionConfiguration"),
        ("PUT", f"functions/{_FUNCTION}/code", "UpdateFunctionCode"),
        ("POST", f"functions/{_FUNCTION}/invocations", "Invoke"),
        ("GET", f"functions/{_FUNCTION}/concurrency", "GetFunctionConcurrency"),
        ("PUT", f"functions/{_FUNCTION}/concurrency", "PutFunctionConcurrency"),
        ("DELETE", f"functions/{_FUNCTION}/concurrency", "DeleteFunctionConcurrency"),
        ("GET", f"functions/{_FUNCTION}/policy", "GetPolicy"),
        ("POST", f"functions/{_FUNCTION}/policy", "AddPermission"),
        ("GET", f"functions/{_FUNCTION}/versions", "ListVersionsByFunction"),
        ("POST", "event-source-mappings", "CreateEventSourceMapping"),
        ("GET", "event-source-mappings", "ListEventSourceMappings"),
        ("GET", "event-source-mappings/(?P<uuid>[^/]+)", "GetEventSourceMapping"),
        ("PUT", "event-source-mappings/(?P<uuid>[^/]+)", "UpdateEventSourceMapping"),
        ("DELETE", "event-source-mappings/(?P<uuid>[^/]+)", "DeleteEventSourceMapping"),
        ("GET", "tags/(?P<arn>.+)", "ListTags"),
        ("POST", "tags/(?P<arn>.+)", "TagResource"),
        ("DELETE", "tags/(?P<arn>.+)", "UntagResource"),
    )
]


def lambda_route(method: str, path: str) -> tuple[str, dict[str, str]] | None:
    """(operation, the path's labels) of a Lambda REST call; None for a path Lambda does not have."""
    for route_method, pattern, operation in _LAMBDA_ROUTES:
        match = pattern.match(path)
        if route_method == method and match:
            return operation, {k: unquote(v) for k, v in match.groupdict().items()}
    return None


class Arns:
    """The ARNs of one request's account and region."""

    def __init__(self, request: SignedRequest, account: str) -> None:
        region = request.region
        p = "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"
        self.prefix = f"arn:{p}:{request.service}:{region}:{account}"
        self.iam = f"arn:{p}:iam::{account}"
        self.account = account

    def function(self, name: str) -> str:
        name = name.split(":function:", 1)[-1].split(":", 1)[0] if name.startswith("arn:") else name.split(":")[0]
        return f"{self.prefix}:function:{name}"


def _lambda(request: SignedRequest, arns: Arns, lookup_mapping: Any) -> list[Need]:
    method, _, path = request.operation.partition(" ")
    routed = lambda_route(method, path)
    if routed is None:
        return [Need("lambda:*", "*")]
    operation, labels = routed
    action = f"lambda:{_RENAMED.get(('lambda', operation), operation)}"
    params = request.params
    if "function" in labels or operation == "CreateFunction":
        function = arns.function(labels.get("function") or str(params.get("FunctionName", "")))
        needs = [Need(action, function)]
        if operation in ("CreateFunction", "UpdateFunctionConfiguration") and params.get("Role"):
            passed = {"iam:PassedToService": "lambda.amazonaws.com"}
            needs.append(Need("iam:PassRole", str(params["Role"]), passed))
        return needs
    if "arn" in labels:
        return [Need(action, labels["arn"])]
    if "uuid" in labels:
        function = params.get("FunctionName") or (lookup_mapping(labels["uuid"]) if lookup_mapping else None)
        context = {"lambda:FunctionArn": arns.function(str(function))} if function else {}
        return [Need(action, f"{arns.prefix}:event-source-mapping:{labels['uuid']}", context)]
    if operation == "CreateEventSourceMapping" and params.get("FunctionName"):
        return [Need(action, "*", {"lambda:FunctionArn": arns.function(str(params["FunctionName"]))})]
    return [Need(action, "*")]


def _resource(request: SignedRequest, arns: Arns) -> str:
    """The resource of a call to a query or JSON service, from its parameters."""
    s, params, prefix = request.service, request.params, arns.prefix
    explicit = params.get("ResourceArn") or params.get("resourceArn") or params.get("ResourceARN")
    if explicit:
        return str(explicit)
    if s == "dynamodb" and params.get("TableName"):
        return f"{prefix}:table/{params['TableName']}"
    if s == "sqs":
        if params.get("QueueUrl"):
            owner, _, name = urlparse(str(params["QueueUrl"])).path.strip("/").partition("/")
            return f"{prefix.rsplit(':', 1)[0]}:{owner}:{name}"
        if params.get("QueueName"):  # GetQueueUrl may name another account's queue
            owner = params.get("QueueOwnerAWSAccountId") or arns.account
            return f"{prefix.rsplit(':', 1)[0]}:{owner}:{params['QueueName']}"
    if s == "sns" and request.operation not in _SNS_UNSCOPED:
        if params.get("TopicArn"):
            return str(params["TopicArn"])
        if request.operation == "CreateTopic" and params.get("Name"):
            return f"{prefix}:{params['Name']}"
    if s == "logs":
        if params.get("logGroupName"):
            group = f"{prefix}:log-group:{params['logGroupName']}"
            return f"{group}:log-stream:{params['logStreamName']}" if params.get("logStreamName") else group
        if request.operation == "DescribeLogGroups":
            return f"{prefix}:log-group:*"
    if s == "cloudwatch":
        names = params.get("AlarmNames") or ([params["AlarmName"]] if params.get("AlarmName") else [])
        if len(names) == 1:
            return f"{prefix}:alarm:{names[0]}"
    if s == "iam":
        return _iam_resource(params, arns)
    return "*"


def _iam_resource(params: dict[str, Any], arns: Arns) -> str:
    for key in ("PolicySourceArn", "PolicyArn"):
        if params.get(key):
            return str(params[key])
    for key, kind in (("RoleName", "role"), ("UserName", "user"), ("GroupName", "group"), ("PolicyName", "policy")):
        if params.get(key):
            return f"{arns.iam}:{kind}/{params[key]}"
    return "*"


# The IAM prefix of a service whose SigV4 signing name differs (CloudWatch signs as "monitoring").
_PREFIXES = {"monitoring": "cloudwatch"}
# A create call that also tags needs the tagging action too ("tag on create": each service's Service Authorization
# Reference lists it as a dependent action of the create): the parameter that carries the tags, and the action.
_TAG_ON_CREATE = {
    ("sns", "CreateTopic"): ("Tags", "sns:TagResource"),
    ("sqs", "CreateQueue"): ("tags", "sqs:TagQueue"),
    ("dynamodb", "CreateTable"): ("Tags", "dynamodb:TagResource"),
    ("logs", "CreateLogGroup"): ("tags", "logs:TagResource"),
    ("iam", "CreateRole"): ("Tags", "iam:TagRole"),
    ("cloudwatch", "PutMetricAlarm"): ("Tags", "cloudwatch:TagResource"),
    ("lambda", "CreateFunction"): ("Tags", "lambda:TagResource"),
}


def _tags_on_create(service: str, operation: str, params: dict[str, Any], resource: str) -> list[Need]:
    carried = _TAG_ON_CREATE.get((service, operation))
    if carried is None:
        return []
    name, action = carried
    tagged = any(k == name or k.startswith(f"{name}.") for k in params) and params.get(name) != {}
    return [Need(action, resource)] if tagged else []


def needs(request: SignedRequest, account: str, lookup_mapping: Any = None) -> list[Need]:
    """Every action the request needs, each on its resource. `lookup_mapping(uuid)`: a mapping's function."""
    service = _PREFIXES.get(request.service, request.service)
    if service != request.service:
        request = SignedRequest(request.access_key, request.region, service, request.operation, request.params)
    arns = Arns(request, account)
    if service == "lambda":
        found = _lambda(request, arns, lookup_mapping)
        operation = lambda_route(*request.operation.partition(" ")[::2]) or ("", {})
        return found + _tags_on_create(service, operation[0], request.params, found[0].resource)
    operation = request.operation
    resource = _resource(request, arns)
    action = f"{service}:{_RENAMED.get((service, operation), operation)}"
    return [Need(action, resource), *_tags_on_create(service, operation, request.params, resource)]
