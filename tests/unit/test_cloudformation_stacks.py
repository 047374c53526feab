"""Stacks orderflow did not build: the CloudFormation types the embedded AWS adds to moto (created, read through
`Fn::GetAtt`, updated and deleted for real), CloudFormation's stack tags, resolving a stack's resources
(--from-cloudformation, orderflow.toml) and `up`/`down` refusing to change what another tool manages."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from orderflow.cli import cli
from orderflow.errors import ManagedElsewhere, NotFoundError
from orderflow.iac import cloudformation
from orderflow.iac.model import stack_model
from orderflow.iac.resolve import from_cloudformation
from orderflow.local.patches.moto import PATCHES
from orderflow.provision import operations
from orderflow.provision.base import Context
from orderflow.provision.planner import plan_down, plan_up
from orderflow.stack import CLOUDFORMATION_STACK_TAG, StackConfig
from tests.unit.conftest import REGION


@pytest.fixture
def patched(mocked):
    with PATCHES.active():
        yield


def _deploy(ctx: Context, name: str, template: dict | None = None, bucket: str = "orderflow-code") -> None:
    s3 = ctx.client("s3")
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    m = stack_model(ctx.config, ctx.package)
    s3.put_object(Bucket=bucket, Key="function.zip", Body=m.package.zip_bytes)
    body = template or cloudformation.template(m, bucket, "function.zip")
    cfn = ctx.client("cloudformation")
    cfn.create_stack(StackName=name, TemplateBody=json.dumps(body), Capabilities=["CAPABILITY_NAMED_IAM"])
    assert cfn.describe_stacks(StackName=name)["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"


def _physical(ctx: Context, name: str) -> dict[str, str]:
    resources = ctx.client("cloudformation").describe_stack_resources(StackName=name)["StackResources"]
    return {r["LogicalResourceId"]: r.get("PhysicalResourceId", "") for r in resources}


def test_the_four_types_moto_lacks_are_created_with_physical_ids(patched, make_ctx):
    ctx = make_ctx("shop", alarm_email="ops@example.com")
    _deploy(ctx, "shop-cfn")
    ids = _physical(ctx, "shop-cfn")
    sns, sqs, iam, cloudwatch = (ctx.client(s) for s in ("sns", "sqs", "iam", "cloudwatch"))
    subscriptions = sns.list_subscriptions()["Subscriptions"]
    assert {s["SubscriptionArn"] for s in subscriptions} == {ids["Subscription"], ids["AlertsTopicSubscription"]}
    [to_queue] = [s for s in subscriptions if s["Protocol"] == "sqs"]
    assert to_queue["Endpoint"] == ctx.arns.queue("shop-OrderQueue")
    url = sqs.get_queue_url(QueueName="shop-OrderQueue")["QueueUrl"]
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
    assert policy["Statement"][0]["Condition"] == {"ArnEquals": {"aws:SourceArn": ctx.arns.topic("shop-OrderTopic")}}
    role = "shop-ProcessOrderFunction-role"
    assert len(iam.list_role_policies(RoleName=role)["PolicyNames"]) == 5
    logs = iam.get_role_policy(RoleName=role, PolicyName="CloudWatchLogsWritePolicy")["PolicyDocument"]
    assert logs["Statement"][0]["Resource"] == ctx.arns.log_streams("/aws/lambda/shop-ProcessOrderFunction")
    [alarm] = cloudwatch.describe_alarms(AlarmNames=[ids["DlqAlarm"]])["MetricAlarms"]
    assert alarm["AlarmActions"] == [ctx.arns.topic("shop-OrderAlerts")]
    assert [m["Id"] for m in alarm["Metrics"]] == ["visible", "in_flight", "new_letters"]


def test_cloudformation_tags_what_it_creates_with_its_stack(patched, make_ctx):
    ctx = make_ctx("shop")
    _deploy(ctx, "shop-cfn")
    tags = ctx.client("lambda").list_tags(Resource=ctx.arns.function("shop-ProcessOrderFunction"))["Tags"]
    assert tags[CLOUDFORMATION_STACK_TAG] == "shop-cfn"
    assert tags["aws:cloudformation:logical-id"] == "Function" and tags["orderflow:stack"] == "shop"
    role_tags = ctx.client("iam").list_role_tags(RoleName="shop-ProcessOrderFunction-role")["Tags"]
    assert {"Key": CLOUDFORMATION_STACK_TAG, "Value": "shop-cfn"} in role_tags


def test_up_and_down_refuse_a_stack_cloudformation_built_even_without_being_told(patched, make_ctx):
    ctx = make_ctx("shop")
    _deploy(ctx, "shop-cfn")
    with pytest.raises(ManagedElsewhere, match="CloudFormation stack 'shop-cfn'"):
        plan_up(ctx)
    with pytest.raises(ManagedElsewhere, match="change it there"):
        plan_down(ctx)
    assert ctx.client("dynamodb").describe_table(TableName="shop-Orders")["Table"]["TableStatus"] == "ACTIVE"


def test_deleting_the_cloudformation_stack_removes_everything_it_made(patched, make_ctx):
    ctx = make_ctx("shop", alarm_email="ops@example.com")
    _deploy(ctx, "shop-cfn")
    ctx.client("cloudformation").delete_stack(StackName="shop-cfn")
    assert {r["state"] for r in operations.inventory(ctx)} == {"missing"}
    assert ctx.client("sns").list_subscriptions()["Subscriptions"] == []
    assert ctx.client("cloudwatch").describe_alarms()["MetricAlarms"] == []


def test_an_updated_role_policy_and_queue_policy_are_applied_and_a_removed_one_deleted(patched, make_ctx):
    ctx = make_ctx("shop")
    _deploy(ctx, "shop-cfn")
    template = cloudformation.template(stack_model(ctx.config, ctx.package), "orderflow-code", "function.zip")
    resources = template["Resources"]
    del resources["RoleSQSDeleteMessagePolicy"]
    resources["Function"]["DependsOn"].remove("RoleSQSDeleteMessagePolicy")
    resources["Trigger"]["DependsOn"].remove("RoleSQSDeleteMessagePolicy")
    resources["RoleDynamoPutItemPolicy"]["Properties"]["PolicyDocument"]["Statement"][0]["Action"] = "dynamodb:GetItem"
    resources["QueuePolicy"]["Properties"]["PolicyDocument"]["Statement"][0]["Sid"] = "Changed"
    cfn = ctx.client("cloudformation")
    cfn.update_stack(StackName="shop-cfn", TemplateBody=json.dumps(template), Capabilities=["CAPABILITY_NAMED_IAM"])
    iam = ctx.client("iam")
    role = "shop-ProcessOrderFunction-role"
    assert "SQSDeleteMessagePolicy" not in iam.list_role_policies(RoleName=role)["PolicyNames"]
    put = iam.get_role_policy(RoleName=role, PolicyName="DynamoPutItemPolicy")["PolicyDocument"]
    assert put["Statement"][0]["Action"] == "dynamodb:GetItem"
    sqs = ctx.client("sqs")
    url = sqs.get_queue_url(QueueName="shop-OrderQueue")["QueueUrl"]
    policy = json.loads(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["Policy"])["Attributes"]["Policy"])
    assert policy["Statement"][0]["Sid"] == "Changed"


def test_an_exported_stack_resolves_by_its_logical_ids(patched, make_ctx):
    ctx = make_ctx("shop")
    _deploy(ctx, "shop-cfn")
    assert from_cloudformation(ctx.aws, "shop-cfn") == {
        "table": "shop-Orders",
        "topic": "shop-OrderTopic",
        "alerts_topic": "shop-OrderAlerts",
        "queue": "shop-OrderQueue",
        "dlq": "shop-OrderQueueDLQ",
        "dlq_alarm": "shop-OrderQueueDLQ-NewLetters",
        "role": "shop-ProcessOrderFunction-role",
        "log_group": "/aws/lambda/shop-ProcessOrderFunction",
        "function": "shop-ProcessOrderFunction",
    }


def _renamed(template: dict, renames: dict[str, str]) -> dict:
    """The template as a person would have written it: other logical ids (references follow)."""
    text = json.dumps(template)
    for old, new in renames.items():
        text = text.replace(f'"{old}"', f'"{new}"')
    document = json.loads(text)
    document["Resources"] = {renames.get(k, k): v for k, v in document["Resources"].items()}
    return document


def test_a_hand_written_stack_is_told_apart_by_what_its_resources_are_to_each_other(patched, make_ctx):
    ctx = make_ctx("hand")
    template = cloudformation.template(stack_model(ctx.config, ctx.package), "orderflow-code", "function.zip")
    template["Outputs"] = {}
    renamed = _renamed(template, {"Queue": "Inbox", "Dlq": "Poison", "Topic": "Orders1", "AlertsTopic": "Pager"})
    _deploy(ctx, "hand-cfn", renamed)
    names = from_cloudformation(ctx.aws, "hand-cfn")
    assert (names["queue"], names["dlq"]) == ("hand-OrderQueue", "hand-OrderQueueDLQ")
    assert (names["topic"], names["alerts_topic"]) == ("hand-OrderTopic", "hand-OrderAlerts")


def test_a_missing_stack_or_one_without_a_pipeline_is_one_clear_error(patched, make_ctx):
    ctx = make_ctx("shop")
    with pytest.raises(NotFoundError, match="'nope' does not exist in eu-west-2"):
        from_cloudformation(ctx.aws, "nope")
    ctx.client("cloudformation").create_stack(
        StackName="just-a-table",
        TemplateBody=json.dumps(
            {
                "Resources": {
                    "T": {
                        "Type": "AWS::DynamoDB::Table",
                        "Properties": {
                            "KeySchema": [{"AttributeName": "k", "KeyType": "HASH"}],
                            "AttributeDefinitions": [{"AttributeName": "k", "AttributeType": "S"}],
                            "BillingMode": "PAY_PER_REQUEST",
                        },
                    }
                }
            }
        ),
    )
    with pytest.raises(NotFoundError, match="has no topic, queue, function"):
        from_cloudformation(ctx.aws, "just-a-table")


@pytest.fixture
def run(patched):
    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(cli, ["--region", REGION, *args], catch_exceptions=False)

    return invoke


def test_the_cli_proves_a_cloudformation_stack_and_refuses_to_change_it(run, make_ctx):
    ctx = make_ctx("shop")
    _deploy(ctx, "shop-cfn")
    status = json.loads(run("--json", "--from-cloudformation", "shop-cfn", "status").stdout)
    assert {r["state"] for r in status["resources"]} == {"exists"}
    assert {r["name"] for r in status["resources"]} >= {"shop-Orders", "shop-ProcessOrderFunction"}
    assert status["managedBy"] == "CloudFormation stack 'shop-cfn'"
    for command in (["up"], ["down", "--yes"], ["up", "--dry-run"]):
        refused = run("--json", "--from-cloudformation", "shop-cfn", *command)
        assert refused.exit_code == 1
        document = json.loads(refused.stdout)
        assert document["code"] == "managed-elsewhere"
        assert document["error"].startswith("Stack is managed by CloudFormation stack 'shop-cfn': change it there")
    plain = run("--stack", "shop", "down", "--yes")
    assert plain.exit_code == 1 and "CloudFormation stack 'shop-cfn'" in plain.stderr


def test_export_uploads_the_package_and_the_template_deploys_with_no_parameter_given(run, make_ctx, tmp_path):
    ctx = make_ctx("shop")
    ctx.client("s3").create_bucket(Bucket="my-code", CreateBucketConfiguration={"LocationConstraint": REGION})
    result = run("--stack", "shop", "--json", "export", "--format", "cloudformation", "--output", str(tmp_path),
                 "--upload-to", "my-code")  # fmt: skip
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert document["code"].startswith("s3://my-code/orderflow/shop/function-")
    template = (tmp_path / "template.json").read_text()
    cfn = ctx.client("cloudformation")
    cfn.create_stack(StackName="shop-cfn", TemplateBody=template, Capabilities=["CAPABILITY_NAMED_IAM"])
    assert cfn.describe_stacks(StackName="shop-cfn")["Stacks"][0]["StackStatus"] == "CREATE_COMPLETE"
    function = ctx.client("lambda").get_function(FunctionName="shop-ProcessOrderFunction")["Configuration"]
    assert function["CodeSha256"] == ctx.package.code_sha256


def test_a_stack_named_in_the_settings_file_is_proven_not_changed(run, make_ctx, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "orderflow.toml").write_text(
        '[stacks.tf.resources]\ntable = "tf-orders"\ntopic = "tf-topic"\nqueue = "tf-queue"\ndlq = "tf-dlq"\n'
        'function = "tf-fn"\n'
    )
    refused = run("--stack", "tf", "up")
    assert refused.exit_code == 1
    assert "managed by orderflow.toml [stacks.tf.resources]: change it there" in refused.stderr
    status = json.loads(run("--json", "--stack", "tf", "status").stdout)
    names = {r["kind"]: r["name"] for r in status["resources"]}
    assert names["DynamoDB table"] == "tf-orders" and names["Lambda function"] == "tf-fn"
    assert names["IAM role"] == "tf-fn-role"  # not named: where a stack orderflow built would have it


def test_stack_config_names_fall_back_to_orderflows_own():
    config = StackConfig("shop", names=(("table", "given"),), managed_by="x")
    assert config.table_name == "given" and config.queue_name == "shop-OrderQueue"
    assert config.owns(None) and not StackConfig("shop").owns(None)
