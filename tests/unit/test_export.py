"""`orderflow export`: the template is derived from `up`'s own create operations, lints clean (cfn-lint, and SAM
through AWS's own translator), and — deployed by CloudFormation on moto — builds exactly what `up` would: `up`'s
planner finds every resource there and converged (no operation planned). Terraform is parsed (python-hcl2) and its
resource graph compared with the CloudFormation template's."""

from __future__ import annotations

import json
import re

import hcl2
import pytest
from cfnlint.api import ManualArgs, lint
from click.testing import CliRunner
from samtranslator.translator.transform import transform

from orderflow.cli import cli
from orderflow.iac import cloudformation, terraform
from orderflow.iac.export import code_key, upload_package
from orderflow.iac.model import TRANSLATIONS, blank_account_context, stack_model
from orderflow.local.patches.moto import PATCHES
from orderflow.provision.base import Context
from orderflow.provision.ops import Call
from orderflow.provision.package import build_package
from orderflow.provision.planner import RESOURCES, observe
from orderflow.stack import StackConfig, StackSettings
from tests.unit.conftest import REGION

# The settings the CLI accepts, at their edges: every one changes some property of the template.
SETTINGS = [
    {},
    {"runtime": "python3.9", "architecture": "arm64", "memory_size": 10240, "function_timeout": 900,
     "visibility_timeout": 5700, "max_receive_count": 1000, "batching_window": 300, "max_concurrency": 1000},
    {"runtime": "python3.14", "batch_size": 10000, "batching_window": 1, "alarm_email": "ops@example.com"},
    {"memory_size": 128, "function_timeout": 1, "visibility_timeout": 6, "batch_size": 1, "max_receive_count": 1,
     "max_concurrency": 2},
]  # fmt: skip
STACKS = ["default", "shop"]


def model(stack: str = "shop", **settings):
    return stack_model(StackConfig(stack, StackSettings(**settings)))


def test_every_create_call_of_up_has_its_template_resource_and_nothing_else_is_in_it():
    config = StackConfig("shop", StackSettings(alarm_email="ops@example.com"))
    ctx = blank_account_context(config, build_package())
    planned = [op.action for r in RESOURCES for op in r.create_operations(ctx, None) if isinstance(op, Call)]
    exported = [action for resource in stack_model(config).resources for action in resource.calls]
    assert sorted(planned) == sorted(exported)
    assert set(planned) <= set(TRANSLATIONS)


def test_a_call_the_export_cannot_translate_stops_it(monkeypatch):
    from orderflow.iac import model as iac_model

    monkeypatch.delitem(iac_model.TRANSLATIONS, "logs:PutRetentionPolicy")
    with pytest.raises(iac_model.UntranslatableCall, match="logs:PutRetentionPolicy"):
        model()


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: ",".join(s) or "defaults")
def test_cloudformation_and_sam_templates_lint_clean(stack, settings, monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)  # the SAM translator asks boto3 for a region
    m = model(stack, **settings)
    template = cloudformation.template(m)
    assert _lint(template) == []
    sam = cloudformation.sam_template(m, "s3://orderflow-code/function.zip")  # what `sam package` leaves
    assert _lint(sam) == []
    translated = transform(sam, {}, _NoManagedPolicies())
    assert _lint(translated) == []
    # SAM's translation is the CloudFormation template, but for the trigger's id and SAM's own function tag
    ours = {k: v["Type"] for k, v in template["Resources"].items()}
    theirs = {k: v["Type"] for k, v in translated["Resources"].items()}
    assert theirs == {**{k: t for k, t in ours.items() if k != "Trigger"}, "FunctionTrigger": ours["Trigger"]}
    assert translated["Resources"]["FunctionTrigger"]["Properties"] == template["Resources"]["Trigger"]["Properties"]


def _lint(template: dict) -> list[str]:
    """cfn-lint's findings; a deprecated runtime's warning (W2531) is expected when one was chosen: `up` warns too."""
    runtime = json.dumps(template).count('"python3.9"') + json.dumps(template).count('"python3.10"')
    found = lint(json.dumps(template), config=ManualArgs(regions=[REGION]))
    return [str(m) for m in found if not (runtime and m.rule.id == "W2531")]


class _NoManagedPolicies:
    def load(self) -> dict:
        return {}


def test_the_handler_is_too_large_for_an_inline_zipfile_so_the_code_is_a_parameter():
    package = build_package()
    assert len(package.zip_bytes) > 4096  # CloudFormation's inline Code.ZipFile limit
    code = cloudformation.template(model())["Resources"]["Function"]["Properties"]["Code"]
    assert code == {"S3Bucket": {"Ref": "CodeS3Bucket"}, "S3Key": {"Ref": "CodeS3Key"}}


def test_references_order_the_template_as_up_orders_its_resources():
    resources = cloudformation.template(model())["Resources"]
    function = resources["Function"]
    assert function["Properties"]["Role"] == {"Fn::GetAtt": ["Role", "Arn"]}
    assert function["Properties"]["Environment"]["Variables"]["TABLE_NAME"] == {"Ref": "Table"}
    # what up waits for before the function (its role's policies, its log group) without referencing it
    assert set(function["DependsOn"]) == {"LogGroup"} | {k for k in resources if k.startswith("Role") and k != "Role"}
    policy = resources["QueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert policy["Condition"] == {"ArnEquals": {"aws:SourceArn": {"Ref": "Topic"}}}
    assert policy["Resource"] == {"Fn::GetAtt": ["Queue", "Arn"]}
    assert "QueuePolicy" in resources["Subscription"]["DependsOn"]  # SNS may deliver only once the policy is in
    logs = resources["RoleCloudWatchLogsWritePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]
    assert logs["Resource"] == {"Fn::GetAtt": ["LogGroup", "Arn"]}  # CloudFormation's Arn is the `:*` form
    assert resources["Dlq"]["Properties"]["Tags"] == [{"Key": "orderflow:stack", "Value": "shop"}]
    assert "${AWS::AccountId}" not in json.dumps(resources["Function"])  # no ARN left literal where a Ref fits


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: ",".join(s) or "defaults")
def test_deployed_by_cloudformation_it_is_exactly_what_up_builds(make_ctx, settings):
    """moto's CloudFormation (with the types orderflow adds) deploys the template; `up`'s planner then finds
    every resource, ours by tag, and converged: not one operation planned."""
    ctx: Context = make_ctx("shop", **settings)
    with PATCHES.active():
        _deploy(ctx, "shop-cfn")
        for o in observe(ctx):
            assert o.ownership == "owned", (o.resource.key, o.ownership)
            change = o.resource.plan(ctx, o.observed)
            assert change.action == "unchanged", (o.resource.key, change.details)


def _deploy(ctx: Context, name: str, template: dict | None = None) -> dict:
    s3 = ctx.client("s3")
    s3.create_bucket(Bucket="orderflow-code", CreateBucketConfiguration={"LocationConstraint": REGION})
    m = stack_model(ctx.config, ctx.package)
    key = upload_package(ctx.aws, m, "orderflow-code")
    body = template or cloudformation.template(m, "orderflow-code", key)
    cfn = ctx.client("cloudformation")
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(body), Capabilities=["CAPABILITY_NAMED_IAM"])
    [stack] = cfn.describe_stacks(StackName=name)["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    return stack


def test_the_code_key_changes_with_the_code():
    ctx = model()
    assert code_key(ctx).startswith("orderflow/shop/function-") and code_key(ctx).endswith(".zip")
    other = stack_model(StackConfig("shop"), type(ctx.package)(ctx.package.zip_bytes + b"\0"))
    assert code_key(other) != code_key(ctx)


# ---- Terraform ----

_REFERENCE = re.compile(r"\b(aws_[a-z_]+)\.([a-z0-9_]+)\b")


def _plain(value):
    """python-hcl2 keeps a string's quotes: the values as HCL means them."""
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _parsed(text: str) -> dict[str, dict]:
    """address -> body of every resource block."""
    found = {}
    for block in _plain(hcl2.loads(text))["resource"]:
        for tf_type, named in block.items():
            for name, body in named.items():
                found[f"{tf_type}.{name}"] = body
    return found


def _edges_of_cloudformation(resources: dict) -> set[tuple[str, str]]:
    edges = set()
    for logical_id, body in resources.items():
        text = json.dumps(body["Properties"])
        targets = set(re.findall(r'"Ref": "(\w+)"', text)) | set(re.findall(r'"Fn::GetAtt": \["(\w+)"', text))
        for target in targets | set(body.get("DependsOn", [])):
            if target in resources:
                edges.add((logical_id, target))
    return edges


@pytest.mark.parametrize("settings", SETTINGS, ids=lambda s: ",".join(s) or "defaults")
def test_terraform_parses_and_holds_the_same_resources_and_references(settings):
    m = model(**settings)
    text = terraform.render(m, "lambda_code")
    resources = cloudformation.resources(m)
    types = {k: v["Type"] for k, v in resources.items()}
    expected = {terraform.address(k, types): k for k in resources}
    found = _parsed(text)
    assert set(found) == set(expected)
    edges = set()
    for address, body in found.items():
        for tf_type, name in _REFERENCE.findall(json.dumps(body)):
            target = f"{tf_type}.{name}"
            if target in expected and target != address:
                edges.add((expected[address], expected[target]))
    assert edges == _edges_of_cloudformation(resources)
    function = found["aws_lambda_function.function"]
    settings_seen = StackSettings(**settings)
    assert function["runtime"] == settings_seen.runtime and function["memory_size"] == settings_seen.memory_size
    assert function["architectures"] == [settings_seen.architecture]
    trigger = found["aws_lambda_event_source_mapping.trigger"]
    assert trigger["batch_size"] == settings_seen.batch_size
    assert trigger["function_response_types"] == ["ReportBatchItemFailures"]
    queue = found["aws_sqs_queue.queue"]
    assert queue["visibility_timeout_seconds"] == settings_seen.visibility_timeout
    assert "data.archive_file.function" in text and 'source_dir  = "${path.module}/lambda_code"' in text


def test_terraform_keeps_a_literal_dollar_brace_literal():
    assert terraform.hcl("costs ${5}") == '"costs $${5}"'
    assert terraform.hcl({"aws:SourceArn": terraform.Expr("aws_sns_topic.topic.arn")}).splitlines()[1].strip() == (
        '"aws:SourceArn" = aws_sns_topic.topic.arn'
    )


# ---- the command ----


def test_export_writes_the_files_and_never_overwrites_an_earlier_export(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    first = runner.invoke(cli, ["--stack", "shop", "export", "--format", "cloudformation", "--output", "out"])
    assert first.exit_code == 0, first.output
    template = json.loads((tmp_path / "out" / "template.json").read_text())
    assert (tmp_path / "out" / "function.zip").read_bytes() == build_package().zip_bytes
    assert template["Resources"]["Table"]["Properties"]["TableName"] == "shop-Orders"
    (tmp_path / "out" / "template.json").write_text("edited by hand")
    again = runner.invoke(cli, ["--stack", "shop", "export", "--format", "cloudformation", "--output", "out"])
    assert again.exit_code == 1
    assert "already exists" in again.output and "--force" in again.output
    assert (tmp_path / "out" / "template.json").read_text() == "edited by hand"
    forced = runner.invoke(
        cli, ["--stack", "shop", "export", "--format", "cloudformation", "--output", "out", "--force"]
    )
    assert forced.exit_code == 0 and json.loads((tmp_path / "out" / "template.json").read_text()) == template


def test_export_takes_up_s_settings_from_flags_and_the_settings_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "orderflow.toml").write_text("[stacks.default]\nmemory_size = 512\n")
    result = CliRunner().invoke(
        cli, ["--json", "export", "--format", "terraform", "--output", "tf", "--architecture", "arm64"]
    )
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["settings"]["memory_size"] == {"value": 512, "source": "orderflow.toml [stacks.default]"}
    function = _parsed((tmp_path / "tf" / "main.tf").read_text())["aws_lambda_function.function"]
    assert function["memory_size"] == 512 and function["architectures"] == ["arm64"]
    assert (tmp_path / "tf" / "lambda_code" / "index.py").is_file()
    assert not (tmp_path / "tf" / "lambda_code" / "__init__.py").exists()


def test_export_refuses_bad_input_in_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a-file").write_text("")
    runner = CliRunner()
    on_a_file = runner.invoke(cli, ["export", "--format", "sam", "--output", "a-file"])
    assert on_a_file.exit_code == 2 and "'a-file' is a file" in on_a_file.output
    upload_tf = runner.invoke(cli, ["export", "--format", "terraform", "--upload-to", "bucket", "--output", "x"])
    assert upload_tf.exit_code == 2 and "--upload-to is for the cloudformation and sam formats" in upload_tf.output
    bad_setting = runner.invoke(cli, ["export", "--format", "sam", "--function-timeout", "30"])
    assert bad_setting.exit_code == 2 and "visibility timeout" in bad_setting.output
    assert not (tmp_path / "x").exists() and not (tmp_path / "orderflow-export").exists()
