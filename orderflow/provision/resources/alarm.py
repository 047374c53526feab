"""The DLQ alarm `OrderQueueDLQ-NewLetters`, and the email subscription to its alerts topic.

The alarm fires on every new dead letter, not only the first. Alarming on the DLQ's `NumberOfMessagesSent` misses
every letter (a redrive policy's move is not a send), and `ApproximateNumberOfMessagesVisible > 0` notifies once,
then stays in ALARM while letters pile up. So it watches the increase, per minute, of the letters held (visible
plus in flight, so that reading them with `dlq show` is no increase); FILL puts 0 where SQS published nothing (it
stops publishing for a queue inactive for six hours, which an empty DLQ is), so the first letter after a quiet day
counts too. Sources in docs/fidelity.md.
"""

from __future__ import annotations

import hashlib
from typing import Any

from orderflow.arns import parse_arn
from orderflow.aws import Aws, or_none
from orderflow.provision.base import Context, Observed, Resource
from orderflow.provision.grants import OBSERVERS, Grant, grant
from orderflow.provision.ops import Call, Operation
from orderflow.provision.resources.topic import Topic
from orderflow.stack import StackConfig, tag_dict, tag_list

PERIOD_SECONDS = 60
# Letters visible plus letters being read (`dlq show` holds them in flight a moment): reading the DLQ is no new letter.
NEW_LETTERS = "DIFF(FILL(visible, 0) + FILL(in_flight, 0))"


def metric_query(
    query_id: str,
    namespace: str,
    metric: str,
    dimension: tuple[str, str],
    stat: str,
    period: int,
    return_data: bool = True,
) -> dict[str, Any]:
    """A MetricDataQuery reading one metric of one dimension (the shape GetMetricData and PutMetricAlarm share)."""
    return {
        "Id": query_id,
        "MetricStat": {
            "Metric": {
                "Namespace": namespace,
                "MetricName": metric,
                "Dimensions": [{"Name": dimension[0], "Value": dimension[1]}],
            },
            "Period": period,
            "Stat": stat,
        },
        "ReturnData": return_data,
    }


def _dlq_metric(query_id: str, metric: str, config: StackConfig) -> dict[str, Any]:
    """One of the DLQ's SQS metrics, per minute, as a query the expression reads (not itself returned)."""
    dimension = ("QueueName", config.dlq_name)
    return metric_query(query_id, "AWS/SQS", metric, dimension, "Maximum", PERIOD_SECONDS, return_data=False)


def dlq_alarm_definition(config: StackConfig, alerts_topic_arn: str) -> dict[str, Any]:
    """PutMetricAlarm's parameters for the stack's DLQ alarm (pure; tags aside)."""
    return {
        "AlarmName": config.dlq_alarm_name,
        "AlarmDescription": (
            f"New dead letters in {config.dlq_name}: orders that failed {config.settings.max_receive_count} "
            f"time(s). See them with `orderflow --stack {config.name} dlq show`."
        ),
        "ActionsEnabled": True,
        "AlarmActions": [alerts_topic_arn],
        "Metrics": [
            _dlq_metric("visible", "ApproximateNumberOfMessagesVisible", config),
            _dlq_metric("in_flight", "ApproximateNumberOfMessagesNotVisible", config),
            {
                "Id": "new_letters",
                "Expression": NEW_LETTERS,
                "Label": "new dead letters",
                "ReturnData": True,
            },
        ],
        "EvaluationPeriods": 1,
        "DatapointsToAlarm": 1,
        "Threshold": 0.0,
        "ComparisonOperator": "GreaterThanThreshold",
        "TreatMissingData": "notBreaching",
    }


def _comparable(alarm: dict[str, Any]) -> dict[str, Any]:
    """The fields of a DescribeAlarms answer that `dlq_alarm_definition` sets, in the same shape."""
    keys = dlq_alarm_definition(StackConfig(), "").keys()
    found = {k: alarm.get(k) for k in keys}
    found["Metrics"] = [
        {k: v for k, v in query.items() if k in ("Id", "MetricStat", "Expression", "Label", "ReturnData")}
        for query in alarm.get("Metrics") or []
    ]
    return found


def alarm_action_names(aws: Aws, alarm: str) -> list[str]:
    """The names of the topics the alarm notifies (for telling a stack's topics apart)."""
    alarms = aws.client("cloudwatch").describe_alarms(AlarmNames=[alarm], AlarmTypes=["MetricAlarm"])["MetricAlarms"]
    return [parse_arn(a).name for found in alarms for a in found.get("AlarmActions", []) if a.startswith("arn:")]


class DlqAlarm(Resource):
    key = "dlq_alarm"
    kind = "CloudWatch alarm"
    depends_on = ("dlq", "alerts_topic")

    def grants(self, ctx: Context) -> list[Grant]:
        alarm = self.arn(ctx)
        return [
            grant(OBSERVERS | {"watch"}, ("cloudwatch:DescribeAlarms",), alarm),
            grant(OBSERVERS, ("cloudwatch:ListTagsForResource",), alarm),
            grant({"up"}, ("cloudwatch:PutMetricAlarm", "cloudwatch:TagResource"), alarm),
            grant({"down"}, ("cloudwatch:DeleteAlarms",), alarm),
            # GetMetricData has no resource type (Service Authorization Reference, CloudWatch).
            grant({"watch"}, ("cloudwatch:GetMetricData",), "*"),
        ]

    def name(self, ctx: Context) -> str:
        return ctx.config.dlq_alarm_name

    def tag_call(self, ctx: Context) -> Call | None:
        params = {"ResourceARN": self.arn(ctx), "Tags": tag_list(ctx.config.tags)}
        return Call("cloudwatch", "TagResource", params, self.name(ctx))

    def arn(self, ctx: Context) -> str:
        return ctx.arns.alarm(self.name(ctx))

    def desired(self, ctx: Context) -> dict[str, Any]:
        return dlq_alarm_definition(ctx.config, ctx.arns.topic(ctx.config.alerts_topic_name))

    def read(self, ctx: Context) -> Observed | None:
        cloudwatch = ctx.client("cloudwatch")
        alarms = cloudwatch.describe_alarms(AlarmNames=[self.name(ctx)], AlarmTypes=["MetricAlarm"])["MetricAlarms"]
        if not alarms:
            return None
        tags = or_none(lambda: cloudwatch.list_tags_for_resource(ResourceARN=alarms[0]["AlarmArn"]).get("Tags", []))
        if tags is None:
            return None  # deleted between the two reads
        return Observed(state={"alarm": alarms[0]}, tags=tag_dict(tags))

    def status_detail(self, observed: Observed) -> str | None:
        return str(observed.state["alarm"].get("StateValue"))

    def create_operations(self, ctx: Context, vanishing: Observed | None) -> list[Operation]:
        params = {**self.desired(ctx), "Tags": tag_list(ctx.config.tags)}
        return [Call("cloudwatch", "PutMetricAlarm", params, self.name(ctx))]

    def update_operations(self, ctx: Context, observed: Observed) -> list[Operation]:
        current, desired = _comparable(observed.state["alarm"]), self.desired(ctx)
        reasons = tuple(f"{key} differs" for key in desired if current.get(key) != desired[key])
        # PutMetricAlarm replaces the whole configuration and keeps the state (and ignores Tags on an update).
        return [Call("cloudwatch", "PutMetricAlarm", desired, self.name(ctx), reasons)] if reasons else []

    def delete_operations(self, ctx: Context, observed: Observed) -> list[Operation]:
        return [Call("cloudwatch", "DeleteAlarms", {"AlarmNames": [self.name(ctx)]}, self.name(ctx), gone_ok=True)]


class AlertsTopic(Topic):
    """SNS topic `OrderAlerts`, which the DLQ alarm notifies, with the `--alarm-email` address subscribed.

    SNS mails the address a confirmation link; until it is followed the subscription is `PendingConfirmation`
    (status says so) and cannot be removed, only left to expire (SNS deletes unconfirmed subscriptions after 48
    hours). Subscriptions cannot be tagged, so the topic records (tag `orderflow:alarm-email`, a digest of the
    address) which address orderflow subscribed: only that one is ever unsubscribed, and only when asked for
    (`--alarm-email ""`, another address, or the settings file) — never because no setting was found, and never one
    that someone else subscribed by hand."""

    key = "alerts_topic"

    def grants(self, ctx: Context) -> list[Grant]:
        topic = self.arn(ctx)
        reads = ("sns:GetTopicAttributes", "sns:ListTagsForResource", "sns:ListSubscriptionsByTopic")
        writes = ("sns:CreateTopic", "sns:TagResource", "sns:UntagResource", "sns:Subscribe")
        return [
            grant(OBSERVERS, reads, topic),
            grant({"up"}, writes, topic),
            # SNS has no resource type for a subscription: Unsubscribe is allowed on "*" or not at all.
            grant({"up"}, ("sns:Unsubscribe",), "*"),
            grant({"down"}, ("sns:DeleteTopic",), topic),
        ]

    def name(self, ctx: Context) -> str:
        return ctx.config.alerts_topic_name

    def read(self, ctx: Context) -> Observed | None:
        observed = super().read(ctx)
        if observed is None:
            return None
        paginator = ctx.client("sns").get_paginator("list_subscriptions_by_topic")
        pages = or_none(lambda: list(paginator.paginate(TopicArn=self.arn(ctx))))
        if pages is None:
            return None  # deleted between the two reads
        emails = [s for page in pages for s in page.get("Subscriptions", []) if s.get("Protocol") == "email"]
        return Observed(state={"emails": emails}, tags=observed.tags)

    @staticmethod
    def _confirmed(subscription: dict[str, Any]) -> bool:
        return str(subscription.get("SubscriptionArn", "")).startswith("arn:")

    @staticmethod
    def _ours(observed: Observed) -> list[dict[str, Any]]:
        """The email subscriptions orderflow made (the address the topic's tag records)."""
        recorded = (observed.tags or {}).get(EMAIL_TAG)
        return [s for s in observed.state["emails"] if recorded and email_digest(s["Endpoint"]) == recorded]

    def deployed_settings(self, observed: Observed) -> dict[str, Any]:
        addresses = sorted({s["Endpoint"] for s in self._ours(observed)})
        return {"alarm_email": addresses[0] if len(addresses) == 1 else ""}

    def status_detail(self, observed: Observed) -> str | None:
        ours = {s["SubscriptionArn"] for s in self._ours(observed)}
        parts = []
        for s in observed.state["emails"]:
            state = "mails" if self._confirmed(s) else "pending confirmation:"
            parts.append(f"{state} {s['Endpoint']}" + ("" if s["SubscriptionArn"] in ours else " (not orderflow's)"))
        return "; ".join(parts) or None

    def _unwanted(self, ctx: Context, observed: Observed) -> list[dict[str, Any]]:
        """orderflow's confirmed subscriptions of an address no longer asked for (pending ones cannot be removed)."""
        wanted = ctx.settings.alarm_email
        if wanted is None:
            return []  # not asked: what orderflow subscribed stays
        return [s for s in self._ours(observed) if s["Endpoint"] != wanted and self._confirmed(s)]

    def _missing(self, ctx: Context, observed: Observed) -> str | None:
        wanted = ctx.settings.alarm_email
        return wanted if wanted and wanted not in {s["Endpoint"] for s in observed.state["emails"]} else None

    def _email_operations(self, ctx: Context, observed: Observed) -> list[Operation]:
        operations: list[Operation] = []
        wanted, topic = ctx.settings.alarm_email, self.arn(ctx)
        recorded = (observed.tags or {}).get(EMAIL_TAG)
        missing = self._missing(ctx, observed)
        if missing:
            params = {"TopicArn": topic, "Protocol": "email", "Endpoint": missing}
            operations.append(Call("sns", "Subscribe", params, self.name(ctx), (f"subscribe {missing}",)))
        if wanted and recorded != email_digest(wanted):
            tag = {"ResourceArn": topic, "Tags": [{"Key": EMAIL_TAG, "Value": email_digest(wanted)}]}
            operations.append(Call("sns", "TagResource", tag, self.name(ctx), (f"record {wanted} as orderflow's",)))
        for subscription in self._unwanted(ctx, observed):
            reason = f"unsubscribe {subscription['Endpoint']}: no longer asked for"
            params = {"SubscriptionArn": subscription["SubscriptionArn"]}
            operations.append(Call("sns", "Unsubscribe", params, self.name(ctx), (reason,), gone_ok=True))
        if wanted == "" and recorded:
            untag = {"ResourceArn": topic, "TagKeys": [EMAIL_TAG]}
            operations.append(Call("sns", "UntagResource", untag, self.name(ctx), ("no address is asked for",)))
        return operations

    def create_operations(self, ctx: Context, vanishing: Observed | None) -> list[Operation]:
        return super().create_operations(ctx, vanishing) + self._email_operations(ctx, Observed(state={"emails": []}))

    def update_operations(self, ctx: Context, observed: Observed) -> list[Operation]:
        return self._email_operations(ctx, observed)


# The topic's record of the address orderflow subscribed (subscriptions cannot carry tags). A digest: tag values
# allow fewer characters than addresses do.
EMAIL_TAG = "orderflow:alarm-email"


def email_digest(address: str) -> str:
    return hashlib.sha256(address.encode()).hexdigest()[:32]
