"""The SNS -> SQS subscription, with the queue policy that lets the topic deliver.

The guide creates only the subscription; on real AWS that alone delivers nothing, because SQS refuses SNS's
SendMessage without a queue policy naming the topic. The policy is written first, so no message is ever dropped.
"""

from __future__ import annotations

import json

from orderflow.aws import or_none
from orderflow.provision import policies
from orderflow.provision.base import Context, Observed, Resource
from orderflow.provision.grants import Grant, grant
from orderflow.provision.ops import Call, Operation, Pause
from orderflow.provision.resources.queues import find_queue

# SQS API Reference, SetQueueAttributes: a change "can take up to 60 seconds" to propagate, and nothing signals when.
QUEUE_POLICY_PROPAGATION_SECONDS = 60.0


class Subscription(Resource):
    key = "subscription"
    kind = "SNS->SQS subscription"
    owned_with = "topic"
    depends_on = ("topic", "queue")

    def grants(self, ctx: Context) -> list[Grant]:
        # Unsubscribe has no resource type in SNS: "*" or nothing.
        return [
            grant({"up"}, ("sns:Subscribe",), self.arn(ctx)),
            grant({"up", "down"}, ("sns:Unsubscribe",), "*"),
            grant({"up", "down"}, ("sqs:SetQueueAttributes",), self._queue_arn(ctx)),
        ]

    def name(self, ctx: Context) -> str:
        return f"{ctx.config.topic_name} -> {ctx.config.queue_name}"

    def arn(self, ctx: Context) -> str:
        return ctx.arns.topic(ctx.config.topic_name)

    def _queue_arn(self, ctx: Context) -> str:
        return ctx.arns.queue(ctx.config.queue_name)

    def _statement(self, ctx: Context) -> dict:
        return policies.topic_send_statement(self._queue_arn(ctx), ctx.arns.topic(ctx.config.topic_name))

    def find_subscription(self, ctx: Context) -> dict | None:
        paginator = ctx.client("sns").get_paginator("list_subscriptions_by_topic")
        pages = or_none(lambda: list(paginator.paginate(TopicArn=ctx.arns.topic(ctx.config.topic_name)))) or []
        subscriptions = (sub for page in pages for sub in page.get("Subscriptions", []))
        return next(
            (s for s in subscriptions if s.get("Protocol") == "sqs" and s.get("Endpoint") == self._queue_arn(ctx)),
            None,
        )

    def read(self, ctx: Context) -> Observed | None:
        queue = find_queue(ctx, ctx.config.queue_name)
        url = queue[0] if queue else None
        policy = policies.parse_policy(queue[1].get("Policy")) if queue else None
        subscription = self.find_subscription(ctx)
        if subscription is None and policies.our_statement(policy) is None:
            return None
        return Observed(state={"queue_url": url, "policy": policy, "subscription": subscription})

    def observed_arn(self, ctx: Context, observed: Observed) -> str:
        """The subscription's own ARN (its `arn()` is the topic's, what a subscription is found under); pending
        confirmation, it has none yet."""
        subscription = observed.state["subscription"] or {}
        found = str(subscription.get("SubscriptionArn", ""))
        return found if found.startswith("arn:") else f"(none yet: {found or 'no subscription'})"

    def status_detail(self, observed: Observed) -> str | None:
        subscription = observed.state["subscription"]
        if subscription is not None and not str(subscription.get("SubscriptionArn")).startswith("arn:"):
            return "pending confirmation"
        return None

    def _operations(
        self, ctx: Context, queue: tuple[str, dict | None] | None, subscribe: Call | None
    ) -> list[Operation]:
        """Add our statement to the queue policy when it lacks it, subscribe, then wait until SQS applies the changed
        policy: SNS drops the orders published before (SQS API Reference, SetQueueAttributes: up to 60 s, and
        nothing signals when). `queue` is (url, policy), or None for a queue this run creates with the statement."""
        operations: list[Operation] = []
        changed_policy = queue is not None and policies.our_statement(queue[1]) != self._statement(ctx)
        if changed_policy:
            document = policies.with_statement(queue[1], self._statement(ctx))
            params = {"QueueUrl": queue[0], "Attributes": {"Policy": json.dumps(document)}}
            reason = "queue policy does not let the topic send to the queue"
            operations.append(Call("sqs", "SetQueueAttributes", params, ctx.config.queue_name, (reason,)))
        if subscribe is not None:
            operations.append(subscribe)
        if changed_policy:
            why = "SQS applies a changed queue policy within 60 s, so no order is dropped"
            operations.append(Pause(QUEUE_POLICY_PROPAGATION_SECONDS, ctx.config.queue_name, why))
        return operations

    def _subscribe(self, ctx: Context, reasons: tuple[str, ...] = ()) -> Call:
        params = {
            "TopicArn": ctx.arns.topic(ctx.config.topic_name),
            "Protocol": "sqs",
            "Endpoint": self._queue_arn(ctx),
            "ReturnSubscriptionArn": True,
        }
        return Call("sns", "Subscribe", params, self.name(ctx), reasons)

    def create_operations(self, ctx: Context, vanishing: Observed | None) -> list[Operation]:
        found = find_queue(ctx, ctx.config.queue_name)
        queue = (found[0], policies.parse_policy(found[1].get("Policy"))) if found else None
        return self._operations(ctx, queue, self._subscribe(ctx))

    def update_operations(self, ctx: Context, observed: Observed) -> list[Operation]:
        # A subscription PendingConfirmation (cross-account) is shown by `status`; only its endpoint can confirm it.
        missing = observed.state["subscription"] is None
        subscribe = self._subscribe(ctx, ("subscription is missing",)) if missing else None
        return self._operations(ctx, (observed.state["queue_url"], observed.state["policy"]), subscribe)

    def delete_operations(self, ctx: Context, observed: Observed) -> list[Operation]:
        operations: list[Operation] = []
        subscription = observed.state["subscription"]
        if subscription and subscription.get("SubscriptionArn", "").startswith("arn:"):
            params = {"SubscriptionArn": subscription["SubscriptionArn"]}
            operations.append(Call("sns", "Unsubscribe", params, self.name(ctx), gone_ok=True))
        url = observed.state["queue_url"]
        if url and policies.our_statement(observed.state["policy"]) is not None:
            remaining = policies.without_our_statement(observed.state["policy"])
            params = {"QueueUrl": url, "Attributes": {"Policy": json.dumps(remaining) if remaining else ""}}
            operations.append(Call("sqs", "SetQueueAttributes", params, ctx.config.queue_name, gone_ok=True))
        return operations
