"""`up` makes the DLQ alarm and the alerts topic (with `--alarm-email`), repairs their drift; `down` removes them."""

from __future__ import annotations

from orderflow.provision import operations
from orderflow.provision.resources.alarm import dlq_alarm_definition
from orderflow.stack import STACK_TAG, StackConfig, StackSettings


def _alarm(ctx) -> dict:
    [alarm] = ctx.client("cloudwatch").describe_alarms(AlarmNames=[ctx.config.dlq_alarm_name])["MetricAlarms"]
    return alarm


def _emails(ctx) -> list[dict]:
    topic = ctx.arns.topic(ctx.config.alerts_topic_name)
    return ctx.client("sns").list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]


def test_the_alarm_watches_the_dlqs_increase_and_notifies_the_alerts_topic():
    config = StackConfig("shop", StackSettings(max_receive_count=5))
    definition = dlq_alarm_definition(config, "arn:aws:sns:eu-west-2:111122223333:shop-OrderAlerts")
    assert definition["AlarmName"] == "shop-OrderQueueDLQ-NewLetters"
    assert definition["AlarmActions"] == ["arn:aws:sns:eu-west-2:111122223333:shop-OrderAlerts"]
    visible, in_flight, increase = definition["Metrics"]
    assert visible["MetricStat"]["Metric"]["Dimensions"] == [{"Name": "QueueName", "Value": "shop-OrderQueueDLQ"}]
    assert visible["MetricStat"]["Metric"]["MetricName"] == "ApproximateNumberOfMessagesVisible"
    assert (visible["ReturnData"], in_flight["ReturnData"], increase["ReturnData"]) == (False, False, True)
    assert in_flight["MetricStat"]["Metric"]["MetricName"] == "ApproximateNumberOfMessagesNotVisible"
    assert increase["Expression"] == "DIFF(FILL(visible, 0) + FILL(in_flight, 0))"
    assert (definition["ComparisonOperator"], definition["Threshold"]) == ("GreaterThanThreshold", 0.0)
    assert "failed 5 time(s)" in definition["AlarmDescription"]


def test_up_creates_a_tagged_alarm_and_alerts_topic_and_down_removes_them(ctx):
    operations.converge(ctx)
    alarm = _alarm(ctx)
    assert alarm["AlarmActions"] == [ctx.arns.topic(ctx.config.alerts_topic_name)]
    assert alarm["Metrics"][2]["Expression"] == "DIFF(FILL(visible, 0) + FILL(in_flight, 0))"
    tags = ctx.client("cloudwatch").list_tags_for_resource(ResourceARN=alarm["AlarmArn"])["Tags"]
    assert {"Key": STACK_TAG, "Value": "default"} in tags
    topic_tags = ctx.client("sns").list_tags_for_resource(ResourceArn=ctx.arns.topic(ctx.config.alerts_topic_name))
    assert {"Key": STACK_TAG, "Value": "default"} in topic_tags["Tags"]
    assert _emails(ctx) == []

    operations.teardown(ctx)
    assert ctx.client("cloudwatch").describe_alarms()["MetricAlarms"] == []
    assert ctx.client("sns").list_topics()["Topics"] == []


def test_a_changed_alarm_is_put_back(ctx):
    operations.converge(ctx)
    ctx.client("cloudwatch").put_metric_alarm(
        **{**dict(dlq_alarm_definition(ctx.config, "arn:aws:sns:eu-west-2:123456789012:elsewhere")), "Threshold": 5.0}
    )
    [step] = [s for s in operations.plan(ctx) if s.resource.key == "dlq_alarm"]
    assert step.change.action == "update"
    assert set(step.change.details) == {"AlarmActions differs", "Threshold differs"}
    operations.converge(ctx)
    assert _alarm(ctx)["Threshold"] == 0.0
    assert _alarm(ctx)["AlarmActions"] == [ctx.arns.topic(ctx.config.alerts_topic_name)]


def test_alarm_email_subscribes_the_address_and_status_shows_it(make_ctx):
    ctx = make_ctx(alarm_email="ops@example.com")
    operations.converge(ctx)
    [subscription] = _emails(ctx)
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "ops@example.com")
    [row] = [r for r in operations.inventory(ctx) if r["key"] == "alerts_topic"]
    assert "ops@example.com" in row["detail"]
    # the same address again: nothing to do
    [step] = [s for s in operations.plan(ctx) if s.resource.key == "alerts_topic"]
    assert step.change.action == "unchanged"


def test_an_address_is_kept_when_no_setting_is_found_and_removed_only_when_asked(make_ctx):
    operations.converge(make_ctx(alarm_email="ops@example.com"))
    _confirm_all(make_ctx())
    not_asked = operations.converge(make_ctx())  # run from a folder without orderflow.toml, say
    assert "alarm_email" not in not_asked.setting_changes
    assert [s["Endpoint"] for s in _emails(make_ctx())] == ["ops@example.com"]
    asked = make_ctx(alarm_email="")
    assert operations.converge(asked, dry_run=True).setting_changes["alarm_email"] == ("ops@example.com", "")
    [step] = [r for r in operations.converge(asked).results if r.key == "alerts_topic"]
    assert "unsubscribe ops@example.com: no longer asked for" in step.details
    assert _emails(asked) == []


def test_a_subscription_someone_added_by_hand_is_never_removed(make_ctx):
    ctx = make_ctx(alarm_email="ops@example.com")
    operations.converge(ctx)
    sns = ctx.client("sns")
    sns.subscribe(TopicArn=ctx.arns.topic("OrderAlerts"), Protocol="email", Endpoint="boss@example.com")
    _confirm_all(ctx)
    for settings in ({"alarm_email": "new@example.com"}, {"alarm_email": ""}, {}):
        operations.converge(make_ctx(**settings))
    assert "boss@example.com" in {s["Endpoint"] for s in _emails(ctx)}
    assert "ops@example.com" not in {s["Endpoint"] for s in _emails(ctx)}
    [row] = [r for r in operations.inventory(ctx) if r["key"] == "alerts_topic"]
    assert "boss@example.com (not orderflow's)" in row["detail"]


def _confirm_all(ctx) -> None:
    """As if each address had followed SNS's link: moto confirms email subscriptions at once."""
    for s in _emails(ctx):
        assert s["SubscriptionArn"].startswith("arn:")


def test_status_says_an_address_is_pending_until_it_confirms():
    from orderflow.provision.base import Observed
    from orderflow.provision.resources.alarm import AlertsTopic, email_digest

    topic = AlertsTopic()
    pending = {"Protocol": "email", "Endpoint": "ops@example.com", "SubscriptionArn": "PendingConfirmation"}
    confirmed = {"Protocol": "email", "Endpoint": "dev@example.com", "SubscriptionArn": "arn:aws:sns:r:1:t:abc"}
    ours = {"orderflow:alarm-email": email_digest("ops@example.com")}
    assert (
        topic.status_detail(Observed(state={"emails": [pending]}, tags=ours)) == "pending confirmation: ops@example.com"
    )
    assert topic.status_detail(Observed(state={"emails": [confirmed]}, tags=ours)) == (
        "mails dev@example.com (not orderflow's)"
    )
    assert topic.status_detail(Observed(state={"emails": []})) is None
