"""One writer per stack, and the truth when there are two: the stack's lock on one machine; across machines
race-safe creates (a same-named resource made meanwhile is accepted when ours, refused when not), tags read back
after every create, `up` saying "is up" only once everything reads back as it should, `down` saying "is down" only
when nothing it removed is back."""

from __future__ import annotations

import json

import boto3
import pytest
from click.testing import CliRunner

from orderflow.cli import cli
from orderflow.errors import Conflict, ForeignResourceError
from orderflow.provision import operations
from orderflow.provision.lock import lock_path, stack_lock
from orderflow.provision.ops import Retag
from orderflow.stack import tag_list
from tests.conftest import count_calls


def _outcomes(report) -> dict[str, str]:
    return {r.key: r.outcome.value for r in report.results}


# ---- the lock ----


def test_a_second_writer_fails_at_once_without_waiting_naming_the_holder(ctx):
    refused = pytest.raises(Conflict, match=r"being changed by `orderflow up` \(pid \d+, since")
    with stack_lock(ctx, "up"), refused, stack_lock(ctx, "down", wait=False):
        pass  # pragma: no cover - never entered


def test_a_second_writer_waits_saying_for_whom_then_takes_the_lock(ctx):
    said: list[str] = []
    first = stack_lock(ctx, "up")
    first.__enter__()
    sleeps = {"n": 0}

    def sleep(_seconds: float) -> None:
        sleeps["n"] += 1
        if sleeps["n"] == 3:
            first.__exit__(None, None, None)  # the first writer finishes while the second waits

    with stack_lock(ctx, "down", on_wait=said.append, sleep=sleep):
        holder = json.loads(lock_path(ctx).read_text())
    assert holder["command"] == "down"
    assert len(said) == 1 and said[0].startswith("waiting for `orderflow up` (pid ")
    assert "to finish with stack 'default'" in said[0]


def test_each_stack_and_place_has_its_own_lock(make_ctx):
    a, b = make_ctx("a"), make_ctx("b")
    assert lock_path(a) != lock_path(b)
    with stack_lock(a, "up"), stack_lock(b, "up", wait=False):
        pass


def test_up_no_wait_is_one_line_while_another_writer_holds_the_stack(ctx, mocked):
    with stack_lock(ctx, "down"):
        result = CliRunner().invoke(cli, ["--region", "eu-west-2", "--json", "up", "--no-wait"])
    assert result.exit_code == 1
    document = json.loads(result.stdout)
    assert document["code"] == "conflict" and "being changed by `orderflow down`" in document["error"]


# ---- across machines: race-safe creates ----


def _role_made_meanwhile(ctx, tags: list[dict[str, str]]):
    """Another machine's `up` creates the role between this run's read and its CreateRole."""

    def create(**_):
        iam = boto3.client("iam", region_name="eu-west-2")  # another machine's client (no hook of this run's)
        if not iam.list_roles()["Roles"]:
            iam.create_role(
                RoleName="ProcessOrderFunction-role", AssumeRolePolicyDocument=json.dumps({"Statement": []}), Tags=tags
            )

    ctx.aws.register("before-call.iam.CreateRole", create)


def test_a_resource_a_concurrent_up_made_is_accepted_when_it_is_ours(ctx):
    _role_made_meanwhile(ctx, tag_list(ctx.config.tags))
    report = operations.converge(ctx)
    assert _outcomes(report)["role"] in ("created", "updated")
    assert {s.change.action for s in operations.converge(ctx, dry_run=True).steps} == {"unchanged"}


def test_a_resource_someone_else_made_meanwhile_is_refused_as_foreign(ctx):
    _role_made_meanwhile(ctx, [{"Key": "team", "Value": "payments"}])
    with pytest.raises(ForeignResourceError, match="IAM role 'ProcessOrderFunction-role' already exists"):
        operations.converge(ctx)


def test_a_table_made_meanwhile_is_not_waited_for_as_if_it_were_being_deleted(ctx, fake_time):
    def create(**_):
        ddb = boto3.client("dynamodb", region_name="eu-west-2")
        if not ddb.list_tables()["TableNames"]:
            ddb.create_table(
                TableName="Orders",
                KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
                Tags=tag_list(ctx.config.tags),
            )

    ctx.aws.register("before-call.dynamodb.CreateTable", create)
    operations.converge(ctx)
    assert sum(fake_time.sleeps) < 5  # no 600 s wait for a table that is not going away


# ---- tags read back after every create ----


def test_tags_an_endpoint_drops_at_creation_are_applied_again(ctx):
    dropping = {"on": True}

    def drop_tags(**_):  # as LocalStack 4.14 does with PutMetricAlarm's Tags
        if dropping["on"]:
            cloudwatch = boto3.client("cloudwatch", region_name="eu-west-2")
            alarm = ctx.arns.alarm("OrderQueueDLQ-NewLetters")
            cloudwatch.untag_resource(ResourceARN=alarm, TagKeys=["orderflow:stack"])

    ctx.aws.register("after-call.cloudwatch.PutMetricAlarm", drop_tags)
    calls = count_calls(ctx.aws)
    operations.converge(ctx)
    tags = ctx.client("cloudwatch").list_tags_for_resource(ResourceARN=ctx.arns.alarm("OrderQueueDLQ-NewLetters"))
    assert tags["Tags"] == tag_list(ctx.config.tags)
    assert calls.writes.count("TagResource") == 1
    dropping["on"] = False
    assert _outcomes(operations.converge(ctx))["dlq_alarm"] == "unchanged"  # ours on the next run too


def test_every_taggable_create_is_followed_by_a_read_back_of_its_tags(ctx):
    steps = operations.plan(ctx)
    retagged = {s.resource.key for s in steps if any(isinstance(op, Retag) for op in s.change.operations)}
    assert retagged == {"table", "topic", "alerts_topic", "dlq", "dlq_alarm", "queue", "role", "log_group", "function"}


def test_a_resource_made_in_this_run_is_ours_even_where_its_tags_cannot_be_read(ctx):
    # Some endpoints answer ListTagsForResource with nothing: what this run made is still this run's.
    from tests.conftest import _HttpStatus

    ctx.aws.register(
        "before-call.sns.ListTagsForResource", lambda **_: (_HttpStatus(200), {"Tags": [], "ResponseMetadata": {}})
    )
    report = operations.converge(ctx)
    assert _outcomes(report)["topic"] == "created"


# ---- the truth when two writers meet ----


def test_up_converges_again_what_another_writer_changed_while_it_ran_and_says_so(ctx):
    def another_down_deletes_the_alarm(**_):
        ctx.client("cloudwatch").delete_alarms(AlarmNames=["OrderQueueDLQ-NewLetters"])

    ctx.aws.register("after-call.lambda.CreateEventSourceMapping", another_down_deletes_the_alarm)
    report = operations.converge(ctx)
    assert any("changed while `up` ran" in w and "OrderQueueDLQ-NewLetters" in w for w in report.warnings)
    assert ctx.client("cloudwatch").describe_alarms(AlarmNames=["OrderQueueDLQ-NewLetters"])["MetricAlarms"]


def test_down_does_not_say_down_while_an_up_elsewhere_made_something_again(ctx, monkeypatch):
    operations.converge(ctx)
    delete = operations.apply_down

    def then_another_up_makes_the_topic_again(*args, **kwargs):
        results = delete(*args, **kwargs)
        boto3.client("sns", region_name="eu-west-2").create_topic(Name="OrderTopic", Tags=tag_list(ctx.config.tags))
        return results

    monkeypatch.setattr(operations, "apply_down", then_another_up_makes_the_topic_again)
    with pytest.raises(Conflict, match="SNS topic OrderTopic exist"):
        operations.teardown(ctx)


def test_an_interrupted_up_says_what_is_left_and_what_to_run(mocked, monkeypatch):
    apply = operations.apply_up

    def ctrl_c_before_the_function(ctx, steps, *args, **kwargs):
        apply(ctx, [s for s in steps if s.resource.key not in ("function", "trigger")], *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(operations, "apply_up", ctrl_c_before_the_function)
    result = CliRunner().invoke(cli, ["--region", "eu-west-2", "up"])
    assert result.exit_code == 130
    assert "`up` stopped part way (9 of 11 resources exist; not done: Lambda function ProcessOrderFunction, SQS " in (
        result.stderr
    )
    assert "run `orderflow up` again to finish it (or `orderflow down` to remove what was made)" in result.stderr
