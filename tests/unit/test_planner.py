"""The plan as data: each resource's operations for creation, every drift case and deletion, asserted as lists
with no AWS at all (AWS Chalice's test_planner.py style). A converged resource plans nothing: no write."""

from __future__ import annotations

import json

import pytest

from orderflow.arns import Arns
from orderflow.errors import ConfigError
from orderflow.provision import policies
from orderflow.provision.base import Context, Observed
from orderflow.provision.ops import Call, Pause, Ref, Wait
from orderflow.provision.package import build_package
from orderflow.provision.resources.alarm import AlertsTopic, DlqAlarm, dlq_alarm_definition, email_digest
from orderflow.provision.resources.function import Function
from orderflow.provision.resources.log_group import LogGroup
from orderflow.provision.resources.queues import DeadLetterQueue, OrderQueue, redrive_policy
from orderflow.provision.resources.role import Role
from orderflow.provision.resources.subscription import Subscription
from orderflow.provision.resources.table import KEY_SCHEMA, Table
from orderflow.provision.resources.topic import Topic
from orderflow.provision.resources.trigger import Trigger
from orderflow.stack import StackConfig, StackSettings

# Made-up coordinates: nothing here reaches AWS, and nothing may assume the guide's region.
ARNS = Arns("aws", "eu-west-2", "111122223333")
PACKAGE = build_package()


def context(**settings) -> Context:
    ctx = Context(aws=None, config=StackConfig("shop", StackSettings(**settings)), package=PACKAGE)  # type: ignore[arg-type]
    ctx.__dict__["arns"] = ARNS  # the cached property, without asking STS
    return ctx


def shape(operations) -> list[tuple[str, str]]:
    """Each operation as (what, which): the call's IAM action, or the wait's waiter/condition, or "pause"."""
    out = []
    for op in operations:
        if isinstance(op, Call):
            out.append((op.action, op.target))
        elif isinstance(op, Wait):
            out.append((op.waiter or op.condition, op.target))
        else:
            out.append(("pause", op.target))
    return out


def converged_queue(ctx: Context) -> Observed:
    attributes = {
        "VisibilityTimeout": "30",
        "RedrivePolicy": json.dumps(redrive_policy(ARNS.queue("shop-OrderQueueDLQ"), 3)),
        "Policy": json.dumps(
            policies.with_statement(
                None, policies.topic_send_statement(ARNS.queue("shop-OrderQueue"), ARNS.topic("shop-OrderTopic"))
            )
        ),
    }
    return Observed(state={"url": "https://queue/shop-OrderQueue", "attributes": attributes})


def converged_function(ctx: Context, **changes) -> Observed:
    state = {
        **Function().desired_configuration(ctx),
        "Architectures": ["x86_64"],
        "CodeSha256": PACKAGE.code_sha256,
        "State": "Active",
        "LastUpdateStatus": "Successful",
    }
    return Observed(state={**state, **changes})


def mapping(state: str = "Enabled", **changes) -> Observed:
    return Observed(
        state={
            "UUID": "u-1",
            "BatchSize": 10,
            "MaximumBatchingWindowInSeconds": 0,
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "ScalingConfig": {},
            "Enabled": True,
            "State": state,
            **changes,
        }
    )


def table(status: str = "ACTIVE", billing: str = "PAY_PER_REQUEST") -> Observed:
    return Observed(state={"status": status, "key_schema": KEY_SCHEMA, "billing_mode": billing})


def test_creating_the_stack_plans_these_calls_in_this_order():
    ctx = context()
    assert shape(Table().create_operations(ctx, None)) == [
        ("dynamodb:CreateTable", "shop-Orders"),
        ("table_exists", "table shop-Orders"),
    ]
    assert shape(OrderQueue().create_operations(ctx, None)) == [("sqs:CreateQueue", "shop-OrderQueue")]
    assert shape(Role().create_operations(ctx, None)) == [("iam:CreateRole", "shop-ProcessOrderFunction-role")] + [
        ("iam:PutRolePolicy", f"shop-ProcessOrderFunction-role/{name}")
        for name in policies.function_inline_policies(ctx.config, ARNS)
    ]
    assert shape(Function().create_operations(ctx, None)) == [
        ("lambda:CreateFunction", "shop-ProcessOrderFunction"),
        ("function_active_v2", "function shop-ProcessOrderFunction"),
    ]
    create, settled = Trigger().create_operations(ctx, None)
    assert create.store == ("uuid", "UUID") and settled.params == {"UUID": Ref("uuid")}
    assert shape(LogGroup().create_operations(ctx, None)) == [
        ("logs:CreateLogGroup", "/aws/lambda/shop-ProcessOrderFunction"),
        ("logs:PutRetentionPolicy", "/aws/lambda/shop-ProcessOrderFunction"),
    ]
    assert shape(DlqAlarm().create_operations(ctx, None)) == [
        ("cloudwatch:PutMetricAlarm", "shop-OrderQueueDLQ-NewLetters")
    ]


def test_the_queue_is_created_with_the_topics_permission_in_it():
    [create] = OrderQueue().create_operations(context(), None)
    statement = json.loads(create.params["Attributes"]["Policy"])["Statement"][0]
    assert statement["Condition"] == {"ArnEquals": {"aws:SourceArn": ARNS.topic("shop-OrderTopic")}}
    assert create.retry[0].code == "AWS.SimpleQueueService.QueueDeletedRecently"


def test_a_table_still_deleting_is_waited_for_before_creating_it_and_only_then():
    ctx = context()
    assert shape(Table().create_operations(ctx, table("DELETING"))) == [
        ("table_not_exists", "table shop-Orders"),
        ("dynamodb:CreateTable", "shop-Orders"),
        ("table_exists", "table shop-Orders"),
    ]


@pytest.mark.parametrize(
    ("resource", "observed"),
    [
        (Table(), lambda ctx: table()),
        (Topic(), lambda ctx: Observed()),
        (OrderQueue(), converged_queue),
        (Function(), converged_function),
        (Trigger(), lambda ctx: mapping()),
        (LogGroup(), lambda ctx: Observed(state={"retention_days": 14})),
        (
            DlqAlarm(),
            lambda ctx: Observed(state={"alarm": dlq_alarm_definition(ctx.config, ARNS.topic("shop-OrderAlerts"))}),
        ),
        (AlertsTopic(), lambda ctx: Observed(state={"emails": []})),
    ],
    ids=lambda v: type(v).__name__ if not callable(v) or isinstance(v, type) else "",
)
def test_a_converged_resource_plans_nothing(resource, observed):
    ctx = context()
    assert resource.update_operations(ctx, observed(ctx)) == []


def test_a_changed_max_receive_count_is_one_set_attributes_that_re_sends_the_policy():
    ctx = context(max_receive_count=7)
    observed = converged_queue(ctx)
    [op] = OrderQueue().update_operations(ctx, observed)
    assert (op.action, set(op.params["Attributes"])) == ("sqs:SetQueueAttributes", {"RedrivePolicy", "Policy"})
    assert op.params["Attributes"]["Policy"] == observed.state["attributes"]["Policy"]
    assert any("maxReceiveCount" in r and "7" in r for r in op.reasons)
    assert "Policy" in op.describe()  # the re-sent policy is shown, not hidden


def test_new_code_waits_for_the_function_then_updates_the_code_and_waits_again():
    ctx = context()
    ops = Function().update_operations(ctx, converged_function(ctx, CodeSha256="old"))
    assert shape(ops) == [
        ("function_active_v2", "function shop-ProcessOrderFunction"),
        ("function_updated_v2", "function shop-ProcessOrderFunction"),
        ("lambda:UpdateFunctionCode", "shop-ProcessOrderFunction"),
        ("function_updated_v2", "function shop-ProcessOrderFunction"),
    ]
    assert ops[2].reasons == ("handler code changed (CodeSha256 differs)",)


def test_a_new_timeout_is_a_configuration_update_and_a_failed_function_is_updated_without_waiting_first():
    ctx = context(function_timeout=4)
    ops = Function().update_operations(ctx, converged_function(ctx, Timeout=3))
    assert [a for a, _ in shape(ops)][2:] == [
        "lambda:UpdateFunctionConfiguration",
        "function_updated_v2",
        "function_active_v2",
    ]
    assert ops[2].reasons == ("Timeout: 3 -> 4",)
    failed = Function().update_operations(ctx, converged_function(ctx, Timeout=4, State="Failed", StateReason="ENI"))
    assert shape(failed)[0][0] == "lambda:UpdateFunctionConfiguration"
    assert "it will be updated to recover" in failed[0].reasons[-1]


def test_a_function_being_updated_is_only_waited_for():
    ctx = context()
    ops = Function().update_operations(ctx, converged_function(ctx, LastUpdateStatus="InProgress"))
    assert [a for a, _ in shape(ops)] == ["function_active_v2", "function_updated_v2"]
    assert ops[0].reasons == ("function is update in progress: wait until it is ready",)


def test_a_disabled_or_changed_mapping_is_updated_and_one_between_states_waited_for():
    ctx = context(batch_size=5)
    ops = Trigger().update_operations(ctx, mapping("Disabled", Enabled=False))
    assert [a for a, _ in shape(ops)] == ["lambda:UpdateEventSourceMapping", "enabled"]
    assert set(ops[0].reasons) == {"BatchSize: 10 -> 5", "Enabled: False -> True"}
    creating = Trigger().update_operations(context(), mapping("Creating"))
    assert [a for a, _ in shape(creating)] == ["settled"]


def test_the_maximum_concurrency_is_set_kept_and_removed_with_an_empty_scaling_config():
    capped = Trigger().update_operations(context(max_concurrency=2), mapping())
    assert [a for a, _ in shape(capped)] == ["lambda:UpdateEventSourceMapping", "enabled"]
    assert capped[0].params["ScalingConfig"] == {"MaximumConcurrency": 2}
    assert (
        Trigger().update_operations(context(max_concurrency=2), mapping(ScalingConfig={"MaximumConcurrency": 2})) == []
    )
    removed = Trigger().update_operations(context(), mapping(ScalingConfig={"MaximumConcurrency": 2}))
    assert removed[0].params["ScalingConfig"] == {}  # Lambda's way to remove it
    assert removed[0].reasons == ("ScalingConfig: {'MaximumConcurrency': 2} -> {}",)
    create = Trigger().create_operations(context(), None)[0]
    assert "ScalingConfig" not in create.params
    assert Trigger().create_operations(context(max_concurrency=7), None)[0].params["ScalingConfig"] == {
        "MaximumConcurrency": 7
    }


def test_a_maximum_concurrency_of_one_is_refused_as_aws_refuses_it():
    with pytest.raises(ConfigError, match="0 \\(none\\) or between 2 and 1000"):
        StackSettings(max_concurrency=1).validate()


def test_role_drift_puts_the_differing_policy_and_removes_a_foreign_one():
    ctx = context()
    desired = policies.function_inline_policies(ctx.config, ARNS)
    inline = dict(desired)
    first = next(iter(desired))
    inline[first] = {"Version": "2012-10-17", "Statement": []}
    inline["TooBroad"] = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    ops = Role().update_operations(ctx, Observed(state={"trust": policies.lambda_trust_policy(), "inline": inline}))
    assert shape(ops) == [
        ("iam:PutRolePolicy", f"shop-ProcessOrderFunction-role/{first}"),
        ("iam:DeleteRolePolicy", "shop-ProcessOrderFunction-role/TooBroad"),
    ]


def test_a_removed_queue_policy_is_put_back_then_waited_out_as_sqs_documents():
    ctx = context()
    subscription = {"SubscriptionArn": "arn:aws:sns:x", "Protocol": "sqs"}
    observed = Observed(state={"queue_url": "https://q", "policy": None, "subscription": subscription})
    ops = Subscription().update_operations(ctx, observed)
    assert shape(ops) == [("sqs:SetQueueAttributes", "shop-OrderQueue"), ("pause", "shop-OrderQueue")]
    assert isinstance(ops[1], Pause) and ops[1].seconds == 60
    missing = Subscription().update_operations(ctx, Observed(state={**observed.state, "subscription": None}))
    assert [a for a, _ in shape(missing)] == ["sqs:SetQueueAttributes", "sns:Subscribe", "pause"]


def test_billing_mode_drift_and_a_table_not_yet_active():
    ctx = context()
    assert [a for a, _ in shape(Table().update_operations(ctx, table(billing="PROVISIONED")))] == [
        "dynamodb:UpdateTable",
        "table_exists",
    ]
    assert [a for a, _ in shape(Table().update_operations(ctx, table("CREATING")))] == ["table_exists"]


def test_alarm_and_email_drift():
    ctx = context(alarm_email="ops@example.com")
    stale = {**dlq_alarm_definition(ctx.config, ARNS.topic("shop-OrderAlerts")), "Threshold": 5.0}
    [put] = DlqAlarm().update_operations(ctx, Observed(state={"alarm": stale}))
    assert put.action == "cloudwatch:PutMetricAlarm" and put.reasons == ("Threshold differs",)
    assert "Tags" not in put.params  # ignored by AWS on an update
    old = {"Endpoint": "old@example.com", "SubscriptionArn": "arn:aws:sns:x:1", "Protocol": "email"}
    by_hand = {"Endpoint": "boss@example.com", "SubscriptionArn": "arn:aws:sns:x:2", "Protocol": "email"}
    recorded = {"orderflow:alarm-email": email_digest("old@example.com")}
    ops = AlertsTopic().update_operations(ctx, Observed(state={"emails": [old, by_hand]}, tags=recorded))
    assert [(op.action, op.params.get("Endpoint") or op.params.get("SubscriptionArn")) for op in ops] == [
        ("sns:Subscribe", "ops@example.com"),
        ("sns:TagResource", None),
        ("sns:Unsubscribe", "arn:aws:sns:x:1"),  # orderflow's old address; never the one added by hand
    ]
    assert AlertsTopic().update_operations(context(), Observed(state={"emails": [old]}, tags=recorded)) == []


def test_deletes_treat_already_gone_as_done():
    ctx = context()
    plans = [
        Topic().delete_operations(ctx, Observed()),
        OrderQueue().delete_operations(ctx, converged_queue(ctx)),
        Function().delete_operations(ctx, converged_function(ctx)),
        LogGroup().delete_operations(ctx, Observed()),
        DlqAlarm().delete_operations(ctx, Observed()),
        Table().delete_operations(ctx, table()),
    ]
    calls = [op for plan in plans for op in plan if isinstance(op, Call)]
    assert all(op.gone_ok for op in calls)
    assert shape(Trigger().delete_operations(ctx, mapping())) == [
        ("lambda:DeleteEventSourceMapping", "shop-OrderQueue -> shop-ProcessOrderFunction"),
        ("gone", "trigger shop-OrderQueue -> shop-ProcessOrderFunction"),
    ]


def test_every_operation_describes_itself_in_one_line_and_as_a_document():
    ctx = context()
    ops = [op for r in (Table(), Function(), Trigger(), Role()) for op in r.create_operations(ctx, None)]
    for op in ops:
        assert "\n" not in op.describe()
        json.dumps(op.to_document())  # the code zip shows as its size and digest
    create = next(op for op in ops if isinstance(op, Call) and op.operation == "CreateFunction")
    assert create.to_document()["parameters"]["Code"]["ZipFile"].startswith(f"<{len(PACKAGE.zip_bytes)} bytes")
    assert DeadLetterQueue().create_operations(ctx, None)[0].params["Attributes"] == {
        "MessageRetentionPeriod": str(14 * 24 * 3600)
    }


def test_an_inactive_function_is_left_alone_when_converged_and_updated_without_waiting_for_active_first():
    """Lambda function states: an idle function is Inactive until it is invoked or updated; waiting for Active
    before updating it would wait for ever."""
    ctx = context()
    assert Function().update_operations(ctx, converged_function(ctx, State="Inactive")) == []
    code = Function().update_operations(ctx, converged_function(ctx, State="Inactive", CodeSha256="old"))
    assert [a for a, _ in shape(code)] == [
        "function_updated_v2",
        "lambda:UpdateFunctionCode",
        "function_updated_v2",
        "function_active_v2",
    ]
    config = Function().update_operations(ctx, converged_function(ctx, State="Inactive", Timeout=60))
    assert "function_active_v2" not in [a for a, _ in shape(config)][:2]


def test_every_function_and_table_wait_names_the_states_it_may_meet_on_the_way():
    ctx = context()
    waits = [
        op for op in Function().update_operations(ctx, converged_function(ctx, Timeout=60)) if isinstance(op, Wait)
    ]
    assert {(w.waiter, w.state_path, w.passing) for w in waits} == {
        ("function_active_v2", "Configuration.State", ("Pending",)),
        ("function_updated_v2", "Configuration.LastUpdateStatus", ("InProgress",)),
    }
