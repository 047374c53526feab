"""`up` against moto: the decided settings, idempotence, dry runs, drift repair, the IAM race."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from orderflow.provision import operations
from orderflow.provision.package import LambdaPackage, build_package
from orderflow.stack import STACK_TAG
from tests.conftest import count_calls, inject_error
from tests.unit.conftest import REGION


def _queue_attributes(ctx, name):
    sqs = ctx.client("sqs")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    return sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"], url


def test_fresh_up_creates_every_resource_with_the_decided_settings(ctx):
    report = operations.converge(ctx)
    assert [r.outcome for r in report.results] == ["created"] * 11
    account = ctx.client("sts").get_caller_identity()["Account"]
    arn = f"{REGION}:{account}"

    table = ctx.client("dynamodb").describe_table(TableName="Orders")["Table"]
    assert table["KeySchema"] == [{"AttributeName": "orderId", "KeyType": "HASH"}]
    assert table["AttributeDefinitions"] == [{"AttributeName": "orderId", "AttributeType": "S"}]
    assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
    tags = ctx.client("dynamodb").list_tags_of_resource(ResourceArn=table["TableArn"])["Tags"]
    assert {"Key": STACK_TAG, "Value": "default"} in tags

    topic_arn = f"arn:aws:sns:{arn}:OrderTopic"
    assert ctx.client("sns").list_tags_for_resource(ResourceArn=topic_arn)["Tags"] == [
        {"Key": STACK_TAG, "Value": "default"}
    ]

    dlq, _ = _queue_attributes(ctx, "OrderQueueDLQ")
    assert dlq["MessageRetentionPeriod"] == str(14 * 24 * 3600)
    queue, queue_url = _queue_attributes(ctx, "OrderQueue")
    assert json.loads(queue["RedrivePolicy"]) == {
        "deadLetterTargetArn": f"arn:aws:sqs:{arn}:OrderQueueDLQ",
        "maxReceiveCount": 3,
    }
    assert queue["VisibilityTimeout"] == "30"
    assert ctx.client("sqs").list_queue_tags(QueueUrl=queue_url)["Tags"] == {STACK_TAG: "default"}

    policy = json.loads(queue["Policy"])
    [statement] = policy["Statement"]
    assert statement["Principal"] == {"Service": "sns.amazonaws.com"}
    assert statement["Action"] == "sqs:SendMessage"
    assert statement["Resource"] == f"arn:aws:sqs:{arn}:OrderQueue"
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": topic_arn}}

    [sub] = ctx.client("sns").list_subscriptions_by_topic(TopicArn=topic_arn)["Subscriptions"]
    assert (sub["Protocol"], sub["Endpoint"]) == ("sqs", f"arn:aws:sqs:{arn}:OrderQueue")

    iam = ctx.client("iam")
    role = iam.get_role(RoleName="ProcessOrderFunction-role")["Role"]
    assert role["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {"Service": "lambda.amazonaws.com"}
    assert {"Key": STACK_TAG, "Value": "default"} in role["Tags"]
    names = set(iam.list_role_policies(RoleName="ProcessOrderFunction-role")["PolicyNames"])
    assert names == {
        "DynamoPutItemPolicy",
        "SQSDeleteMessagePolicy",
        "SQSGetQueueAttributesPolicy",
        "SQSReceiveMessagePolicy",
        "CloudWatchLogsWritePolicy",
    }
    expected_resources = {
        "DynamoPutItemPolicy": f"arn:aws:dynamodb:{arn}:table/Orders",
        "SQSDeleteMessagePolicy": f"arn:aws:sqs:{arn}:OrderQueue",
        "SQSGetQueueAttributesPolicy": f"arn:aws:sqs:{arn}:OrderQueue",
        "SQSReceiveMessagePolicy": f"arn:aws:sqs:{arn}:OrderQueue",
        "CloudWatchLogsWritePolicy": f"arn:aws:logs:{arn}:log-group:/aws/lambda/ProcessOrderFunction:*",
    }
    for name, resource in expected_resources.items():
        document = iam.get_role_policy(RoleName="ProcessOrderFunction-role", PolicyName=name)["PolicyDocument"]
        [statement] = document["Statement"]
        assert statement["Resource"] == resource
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in a for a in actions)

    function = ctx.client("lambda").get_function(FunctionName="ProcessOrderFunction")
    config = function["Configuration"]
    assert config["Runtime"] == "python3.13"
    assert config["Handler"] == "index.lambda_handler"
    assert config["Architectures"] == ["x86_64"]
    assert config["Role"] == role["Arn"]
    assert config["Environment"]["Variables"] == {"TABLE_NAME": "Orders"}
    assert config["CodeSha256"] == build_package().code_sha256
    assert function["Tags"] == {STACK_TAG: "default"}

    [group] = ctx.client("logs").describe_log_groups(logGroupNamePrefix="/aws/lambda/ProcessOrderFunction")["logGroups"]
    assert group["retentionInDays"] == 14

    [mapping] = ctx.client("lambda").list_event_source_mappings(FunctionName="ProcessOrderFunction")[
        "EventSourceMappings"
    ]
    assert mapping["EventSourceArn"] == f"arn:aws:sqs:{arn}:OrderQueue"
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert mapping["BatchSize"] == 10
    assert mapping["State"] == "Enabled"


def test_second_up_makes_no_write_call(ctx):
    operations.converge(ctx)
    calls = count_calls(ctx.aws)
    report = operations.converge(ctx)
    assert [r.outcome for r in report.results] == ["unchanged"] * 11
    assert calls.writes == []
    # Each resource is read once (the subscription reuses the queue's attributes); tags prove ownership; the
    # topic's existence is read from the topic itself, not inferred from its tags. The alerts topic adds 3 reads
    # (its subscriptions too), the alarm 2.
    assert calls.reads.count("GetQueueAttributes") == 2
    assert len(calls.reads) <= 27, calls.reads


def test_dry_run_on_an_empty_account_plans_everything_and_writes_nothing(ctx):
    calls = count_calls(ctx.aws)
    report = operations.converge(ctx, dry_run=True)
    assert [s.change.action for s in report.steps] == ["create"] * 11
    assert report.results == []
    assert calls.writes == []
    assert operations.inventory(ctx)[0]["state"] == "missing"


def test_dry_run_shows_drift_without_repairing_it(ctx):
    operations.converge(ctx)
    attributes, url = _queue_attributes(ctx, "OrderQueue")
    redrive = json.loads(attributes["RedrivePolicy"]) | {"maxReceiveCount": 7}
    ctx.client("sqs").set_queue_attributes(QueueUrl=url, Attributes={"RedrivePolicy": json.dumps(redrive)})
    calls = count_calls(ctx.aws)
    report = operations.converge(ctx, dry_run=True)
    queue_step = next(s for s in report.steps if s.change.key == "queue")
    assert queue_step.change.action == "update"
    assert any("maxReceiveCount" in d and "7" in d for d in queue_step.change.details)
    assert calls.writes == []


def test_hand_edited_max_receive_count_is_repaired(ctx):
    operations.converge(ctx)
    attributes, url = _queue_attributes(ctx, "OrderQueue")
    redrive = json.loads(attributes["RedrivePolicy"]) | {"maxReceiveCount": 9}
    # Policy is re-sent because moto, unlike AWS, drops it on a SetQueueAttributes call that omits it.
    ctx.client("sqs").set_queue_attributes(
        QueueUrl=url, Attributes={"RedrivePolicy": json.dumps(redrive), "Policy": attributes["Policy"]}
    )
    report = operations.converge(ctx)
    assert {r.key: r.outcome for r in report.results}["queue"] == "updated"
    assert [r.outcome for r in report.results].count("updated") == 1
    attributes, _ = _queue_attributes(ctx, "OrderQueue")
    assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == 3


def test_changed_visibility_timeout_is_applied_and_keeps_the_queue_policy(ctx, make_ctx):
    operations.converge(ctx)
    slower = make_ctx(visibility_timeout=120)
    report = {r.key: r.outcome for r in operations.converge(slower).results}
    assert report["queue"] == "updated" and report["subscription"] == "unchanged"
    attributes, _ = _queue_attributes(ctx, "OrderQueue")
    assert attributes["VisibilityTimeout"] == "120"
    assert json.loads(attributes["Policy"])["Statement"][0]["Action"] == "sqs:SendMessage"
    assert {s.change.action for s in operations.converge(slower, dry_run=True).steps} == {"unchanged"}


def test_new_handler_code_runtime_and_timeout_become_function_updates(ctx, make_ctx):
    operations.converge(ctx)
    changed = make_ctx(runtime="python3.12", function_timeout=4)
    report = operations.converge(changed)
    assert {r.key: r.outcome for r in report.results}["function"] == "updated"
    config = changed.client("lambda").get_function_configuration(FunctionName="ProcessOrderFunction")
    assert (config["Runtime"], config["Timeout"]) == ("python3.12", 4)

    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def lambda_handler(event, context):\n    return {}\n")
    changed.package = LambdaPackage(buffer.getvalue())
    report = operations.converge(changed)
    step = next(r for r in report.results if r.key == "function")
    assert step.outcome == "updated"
    assert any("CodeSha256" in d for d in step.details)
    config = changed.client("lambda").get_function_configuration(FunctionName="ProcessOrderFunction")
    assert config["CodeSha256"] == changed.package.code_sha256


def test_removed_queue_policy_and_extra_inline_policy_are_repaired(ctx):
    operations.converge(ctx)
    _drift_queue_policy_and_inline_policy(ctx, None)
    report = {r.key: r.outcome for r in operations.converge(ctx).results}
    assert report["subscription"] == "updated"
    assert report["role"] == "updated"
    attributes, _ = _queue_attributes(ctx, "OrderQueue")
    assert json.loads(attributes["Policy"])["Statement"][0]["Condition"]["ArnEquals"]
    assert "TooBroad" not in ctx.client("iam").list_role_policies(RoleName="ProcessOrderFunction-role")["PolicyNames"]


def test_disabled_mapping_is_re_enabled(ctx):
    operations.converge(ctx)
    lam = ctx.client("lambda")
    [mapping] = lam.list_event_source_mappings(FunctionName="ProcessOrderFunction")["EventSourceMappings"]
    lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    report = {r.key: r.outcome for r in operations.converge(ctx).results}
    assert report["trigger"] == "updated"
    assert lam.get_event_source_mapping(UUID=mapping["UUID"])["State"] == "Enabled"


def test_named_stack_prefixes_every_name_and_lives_beside_default(make_ctx):
    operations.converge(make_ctx())
    blue = make_ctx("blue")
    operations.converge(blue)
    assert blue.client("dynamodb").describe_table(TableName="blue-Orders")["Table"]["TableStatus"] == "ACTIVE"
    blue.client("lambda").get_function(FunctionName="blue-ProcessOrderFunction")
    blue.client("iam").get_role(RoleName="blue-ProcessOrderFunction-role")
    names = {r["name"] for r in operations.inventory(blue)}
    assert "blue-OrderQueueDLQ" in names and "OrderQueueDLQ" not in names


def test_role_propagation_race_is_retried_without_real_sleeping(ctx, fake_time):
    inject_error(
        ctx.aws,
        "before-call.lambda.CreateFunction",
        "InvalidParameterValueException",
        "The role defined for the function cannot be assumed by Lambda.",
        times=3,
    )
    report = operations.converge(ctx)
    assert {r.key: r.outcome for r in report.results}["function"] == "created"
    # A steady retry every poll interval (1 s on AWS): the function follows the role within a second of IAM
    # propagating it, which keeps `up` near its critical path (bench/provision.py --realistic).
    assert fake_time.sleeps == [1.0, 1.0, 1.0]


def test_role_propagation_retry_gives_up_after_about_two_minutes(ctx, fake_time):
    inject_error(
        ctx.aws,
        "before-call.lambda.CreateFunction",
        "InvalidParameterValueException",
        "The role defined for the function cannot be assumed by Lambda.",
    )
    with pytest.raises(ClientError, match="cannot be assumed"):
        operations.converge(ctx)
    assert 100 <= sum(fake_time.sleeps) <= 120


def test_other_create_function_errors_are_not_retried(ctx, fake_time):
    inject_error(ctx.aws, "before-call.lambda.CreateFunction", "InvalidParameterValueException", "bad zip")
    with pytest.raises(ClientError, match="bad zip"):
        operations.converge(ctx)
    assert fake_time.sleeps == []


def _drift_queue_redrive(ctx, make_ctx):
    attributes, url = _queue_attributes(ctx, "OrderQueue")
    redrive = json.loads(attributes["RedrivePolicy"]) | {"maxReceiveCount": 9}
    ctx.client("sqs").set_queue_attributes(
        QueueUrl=url, Attributes={"RedrivePolicy": json.dumps(redrive), "Policy": attributes["Policy"]}
    )
    return ctx


def _drift_queue_policy_and_inline_policy(ctx, make_ctx):
    _, url = _queue_attributes(ctx, "OrderQueue")
    ctx.client("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": ""})
    ctx.client("iam").put_role_policy(
        RoleName="ProcessOrderFunction-role",
        PolicyName="TooBroad",
        PolicyDocument=json.dumps(
            {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
        ),
    )
    return ctx


def _drift_function(ctx, make_ctx):
    ctx.client("lambda").update_function_configuration(FunctionName="ProcessOrderFunction", Timeout=5, MemorySize=512)
    return ctx


def _drift_mapping_disabled(ctx, make_ctx):
    lam = ctx.client("lambda")
    [mapping] = lam.list_event_source_mappings(FunctionName="ProcessOrderFunction")["EventSourceMappings"]
    lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False, BatchSize=3)
    return ctx


def _drift_subscription_and_log_retention(ctx, make_ctx):
    sns = ctx.client("sns")
    topic = ctx.arns.topic("OrderTopic")
    for sub in sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]:
        sns.unsubscribe(SubscriptionArn=sub["SubscriptionArn"])
    ctx.client("logs").put_retention_policy(logGroupName=ctx.config.log_group_name, retentionInDays=3)
    return ctx


def _drift_alarm(ctx, make_ctx):
    from orderflow.provision.resources.alarm import dlq_alarm_definition

    definition = dlq_alarm_definition(ctx.config, ctx.arns.topic(ctx.config.alerts_topic_name))
    ctx.client("cloudwatch").put_metric_alarm(**{**definition, "Threshold": 5.0})
    return ctx


def _deleted_function_and_trigger(ctx, make_ctx):
    lam = ctx.client("lambda")
    for mapping in lam.list_event_source_mappings(FunctionName="ProcessOrderFunction")["EventSourceMappings"]:
        lam.delete_event_source_mapping(UUID=mapping["UUID"])
    lam.delete_function(FunctionName="ProcessOrderFunction")
    return ctx


def _settings_changed(ctx, make_ctx):
    return make_ctx(visibility_timeout=120, runtime="python3.12", batch_size=5, log_retention_days=7)


@pytest.mark.parametrize(
    "drift",
    [
        _drift_queue_redrive,
        _drift_queue_policy_and_inline_policy,
        _drift_function,
        _drift_mapping_disabled,
        _drift_subscription_and_log_retention,
        _drift_alarm,
        _deleted_function_and_trigger,
        _settings_changed,
        None,
    ],
    ids=lambda d: d.__name__.strip("_") if d else "converged",
)
def test_the_dry_run_shows_exactly_the_operations_the_run_makes(ctx, make_ctx, drift):
    operations.converge(ctx)
    if drift is not None:
        ctx = drift(ctx, make_ctx)
    planned = operations.converge(ctx, dry_run=True).to_document()["plan"]
    calls = count_calls(ctx.aws)
    ran = operations.converge(ctx).to_document()
    # The same operations, step by step, in the document `up --json` prints for a dry run and for a run …
    assert [p["operations"] for p in planned] == [r["operations"] for r in ran["results"]]
    assert [p["operations"] for p in planned] == [p["operations"] for p in ran["plan"]]
    # … and the writes made are exactly the planned calls (no hidden call, none skipped).
    planned_calls = sorted(op["call"].split(":")[1] for p in planned for op in p["operations"] if "call" in op)
    assert sorted(calls.writes) == planned_calls
    assert (drift is None) == (planned_calls == [])
    assert all(s.change.action == "unchanged" for s in operations.converge(ctx, dry_run=True).steps)
