"""The stack model rendered as a CloudFormation (or SAM) template.

Values the model holds literally become references: a resource's exact name or ARN becomes `Ref` / `Fn::GetAtt` of
that resource (which also orders the creation), any other value naming the account, region or partition becomes
`Fn::Sub`. What `up` orders by its resources' `depends_on` and the template does not already reference becomes
`DependsOn`. Pure: the same model gives the same template.
"""

from __future__ import annotations

from typing import Any

from orderflow.iac.model import PSEUDO, StackModel, TemplateResource

TEMPLATE_VERSION = "2010-09-09"
SAM_TRANSFORM = "AWS::Serverless-2016-10-31"
CODE_BUCKET = "CodeS3Bucket"
CODE_KEY = "CodeS3Key"


def _ref(logical_id: str) -> dict[str, Any]:
    return {"Ref": logical_id}


def _att(logical_id: str, attribute: str) -> dict[str, Any]:
    return {"Fn::GetAtt": [logical_id, attribute]}


def _references(resource: TemplateResource) -> tuple[str, dict[str, dict[str, Any]]]:
    """(the property that names it, {a literal value that means this resource: the intrinsic that gives it})."""
    p, i = resource.properties, resource.logical_id
    match resource.type:
        case "AWS::DynamoDB::Table":
            return "TableName", {p["TableName"]: _ref(i), PSEUDO.table(p["TableName"]): _att(i, "Arn")}
        case "AWS::SNS::Topic":
            return "TopicName", {PSEUDO.topic(p["TopicName"]): _ref(i), p["TopicName"]: _att(i, "TopicName")}
        case "AWS::SQS::Queue":
            return "QueueName", {PSEUDO.queue(p["QueueName"]): _att(i, "Arn"), p["QueueName"]: _att(i, "QueueName")}
        case "AWS::IAM::Role":
            return "RoleName", {p["RoleName"]: _ref(i), PSEUDO.role(p["RoleName"]): _att(i, "Arn")}
        case "AWS::Logs::LogGroup":
            # CloudFormation's Arn of a log group is the streams' form (`…:log-group:NAME:*`), as IAM wants it
            return "LogGroupName", {p["LogGroupName"]: _ref(i), PSEUDO.log_streams(p["LogGroupName"]): _att(i, "Arn")}
        case "AWS::Lambda::Function":
            return "FunctionName", {p["FunctionName"]: _ref(i), PSEUDO.function(p["FunctionName"]): _att(i, "Arn")}
        case "AWS::CloudWatch::Alarm":
            return "AlarmName", {p["AlarmName"]: _ref(i)}
    return "", {}


def _resolve(value: Any, known: dict[str, dict[str, Any]], used: set[str]) -> Any:
    """`value` with every literal that means a template resource replaced by its reference (noting which)."""
    if isinstance(value, str):
        if value in known:
            target = known[value]
            used.add(target["Ref"] if "Ref" in target else target["Fn::GetAtt"][0])
            return target
        return {"Fn::Sub": value} if "${AWS::" in value else value
    if isinstance(value, dict):
        if set(value) <= {"Ref", "Fn::GetAtt"} and value:  # already a reference (the queue policy's queue)
            used.add(value["Ref"] if "Ref" in value else value["Fn::GetAtt"][0])
            return value
        return {k: _resolve(v, known, used) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, known, used) for v in value]
    return value


# The function's code: its S3 location, the template's parameters (SAM replaces it with `CodeUri`).
CODE = {"S3Bucket": _ref(CODE_BUCKET), "S3Key": _ref(CODE_KEY)}


def resources(model: StackModel) -> dict[str, dict[str, Any]]:
    """Every resource of the template, by logical id."""
    known: dict[str, dict[str, Any]] = {}
    own_name: dict[str, str] = {}
    for resource in model.resources:
        name_property, refs = _references(resource)
        known.update(refs)
        own_name[resource.logical_id] = name_property
    out: dict[str, dict[str, Any]] = {}
    for resource in model.resources:
        used: set[str] = set()
        properties = {}
        for name, value in resource.properties.items():
            if value == "@code":
                value = CODE
            if name == own_name[resource.logical_id]:
                properties[name] = value  # its own name stays a literal (and names are not references to itself)
            else:
                properties[name] = _resolve(value, known, used)
        body: dict[str, Any] = {"Type": resource.type, "Properties": properties}
        needs = [
            other.logical_id
            for other in model.resources
            if other.key in resource.depends_on
            and other.logical_id != resource.logical_id
            and other.logical_id not in used
        ]
        if needs:
            body["DependsOn"] = needs
        out[resource.logical_id] = body
    return out


def outputs(model: StackModel) -> dict[str, dict[str, Any]]:
    """Every resource's physical id (what `Ref` gives), and the ARNs other tools ask for."""
    out: dict[str, dict[str, Any]] = {}
    for resource in model.resources:
        i = resource.logical_id
        out[i] = {"Description": f"{resource.type} physical id", "Value": _ref(i)}
        if resource.type in ("AWS::SQS::Queue", "AWS::Lambda::Function", "AWS::IAM::Role", "AWS::DynamoDB::Table"):
            out[f"{i}Arn"] = {"Description": f"{resource.type} ARN", "Value": _att(i, "Arn")}
    return out


def template(model: StackModel, code_bucket: str = "", code_key: str = "") -> dict[str, Any]:
    """The CloudFormation template: the code package's S3 location as parameters (defaults when it was uploaded)."""
    bucket: dict[str, Any] = {"Type": "String", "Description": "S3 bucket holding the function's code package"}
    key: dict[str, Any] = {"Type": "String", "Description": "S3 key of the function's code package (function.zip)"}
    if code_bucket:
        bucket["Default"], key["Default"] = code_bucket, code_key
    return {
        "AWSTemplateFormatVersion": TEMPLATE_VERSION,
        "Description": _description(model),
        "Parameters": {CODE_BUCKET: bucket, CODE_KEY: key},
        "Resources": resources(model),
        "Outputs": outputs(model),
    }


def sam_template(model: StackModel, code_uri: str) -> dict[str, Any]:
    """The SAM template: the function as `AWS::Serverless::Function` with its code at `code_uri` and the SQS trigger
    as its event; everything else as in the CloudFormation template."""
    body = resources(model)
    function = next(r for r in model.resources if r.type == "AWS::Lambda::Function")
    mapping = next(r for r in model.resources if r.type == "AWS::Lambda::EventSourceMapping")
    trigger = body.pop(mapping.logical_id)["Properties"]
    trigger.pop("FunctionName")
    trigger["Queue"] = trigger.pop("EventSourceArn")
    serverless = body[function.logical_id]
    properties = serverless["Properties"]
    properties.pop("Code")
    properties["CodeUri"] = code_uri
    properties["Tags"] = {t["Key"]: t["Value"] for t in properties["Tags"]}  # SAM's tags are a map
    properties["Events"] = {mapping.logical_id: {"Type": "SQS", "Properties": trigger}}
    serverless["Type"] = "AWS::Serverless::Function"
    # The trigger's own needs (the role's policies) move to the function that now creates it.
    serverless["DependsOn"] = sorted(
        set(serverless.get("DependsOn", [])) | set(_dependencies(model, mapping, function.logical_id))
    )
    out = outputs(model)
    out.pop(mapping.logical_id)
    return {
        "AWSTemplateFormatVersion": TEMPLATE_VERSION,
        "Transform": SAM_TRANSFORM,
        "Description": _description(model),
        "Resources": body,
        "Outputs": out,
    }


def _dependencies(model: StackModel, resource: TemplateResource, exclude: str) -> list[str]:
    return [
        o.logical_id
        for o in model.resources
        if o.key in resource.depends_on and o.type in ("AWS::IAM::RolePolicy",) and o.logical_id != exclude
    ]


def _description(model: StackModel) -> str:
    return (
        f"orderflow stack {model.config.name}: SNS -> SQS -> Lambda -> DynamoDB order pipeline "
        "(exported by `orderflow export`; prove it with `orderflow --from-cloudformation <stack> verify`)"
    )
