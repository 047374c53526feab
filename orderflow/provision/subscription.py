"""The SNS -> SQS subscription, with the queue policy that lets the topic deliver.

The guide creates only the subscription; on real AWS that alone delivers nothing, because SQS refuses SNS's
SendMessage without a queue policy naming the topic. The policy is written first, so no message is ever dropped.
"""

from __future__ import annotations

import json

from botocore.exceptions import ClientError

from orderflow.aws import is_not_found
from orderflow.errors import OrderflowError
from orderflow.provision import policies
from orderflow.provision.base import Context, Observed, Resource
from orderflow.provision.queues import find_queue

# SQS API Reference, SetQueueAttributes: a change "can take up to 60 seconds" to propagate, and nothing signals when.
QUEUE_POLICY_PROPAGATION_SECONDS = 60.0


class Subscription(Resource):
    key = "subscription"
    kind = "SNS->SQS subscription"
    owned_with = "topic"
    depends_on = ("topic", "queue")

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
        try:
            for page in paginator.paginate(TopicArn=ctx.arns.topic(ctx.config.topic_name)):
                for sub in page.get("Subscriptions", []):
                    if sub.get("Protocol") == "sqs" and sub.get("Endpoint") == self._queue_arn(ctx):
                        return sub
        except ClientError as e:
            if is_not_found(e):
                return None
            raise
        return None

    def read(self, ctx: Context) -> Observed | None:
        queue = find_queue(ctx, ctx.config.queue_name)
        url = queue[0] if queue else None
        policy = policies.parse_policy(queue[1].get("Policy")) if queue else None
        subscription = self.find_subscription(ctx)
        if subscription is None and policies.our_statement(policy) is None:
            return None
        return Observed(state={"queue_url": url, "policy": policy, "subscription": subscription})

    def diff(self, ctx: Context, observed: Observed) -> list[str]:
        lines = []
        if policies.our_statement(observed.state["policy"]) != self._statement(ctx):
            lines.append("queue policy does not let the topic send to the queue")
        subscription = observed.state["subscription"]
        if subscription is None:
            lines.append("subscription is missing")
        elif subscription.get("SubscriptionArn") in ("PendingConfirmation", None):
            lines.append("subscription is pending confirmation")
        return lines

    def create(self, ctx: Context) -> None:
        self.update(ctx, Observed(state={"queue_url": None, "policy": None, "subscription": None}))

    def update(self, ctx: Context, observed: Observed) -> None:
        url = observed.state["queue_url"]
        policy_changed = False
        if url is None:
            # `create`: the queue was made by this run, with the policy in it (OrderQueue.attributes_at_creation)
            queue = find_queue(ctx, ctx.config.queue_name)
            if queue is None:
                raise OrderflowError(f"Queue {ctx.config.queue_name!r} does not exist: run `orderflow up` again")
            url = queue[0]
            observed = Observed(state={**observed.state, "policy": policies.parse_policy(queue[1].get("Policy"))})
        if policies.our_statement(observed.state["policy"]) != self._statement(ctx):
            policy = policies.with_statement(observed.state["policy"], self._statement(ctx))
            ctx.client("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
            policy_changed = True
        if observed.state["subscription"] is None:
            ctx.client("sns").subscribe(
                TopicArn=ctx.arns.topic(ctx.config.topic_name),
                Protocol="sqs",
                Endpoint=self._queue_arn(ctx),
                ReturnSubscriptionArn=True,
            )
        if policy_changed:
            self._wait_for_policy(ctx)

    def _wait_for_policy(self, ctx: Context) -> None:
        """Orders published before a changed policy applies are dropped by SNS; SQS gives no signal, so wait the
        documented time (scaled to the target: 0 on an instant embedded AWS)."""
        seconds = QUEUE_POLICY_PROPAGATION_SECONDS * ctx.propagation_scale
        deadline = ctx.clock() + seconds
        while (left := deadline - ctx.clock()) > 0:
            ctx.on_wait(
                self.key, f"SQS applies a changed queue policy within 60 s: {left:.0f}s left, so no order is dropped"
            )
            ctx.sleep(min(left, max(ctx.poll_interval, 1.0)))

    def delete(self, ctx: Context, observed: Observed) -> None:
        subscription = observed.state["subscription"]
        if subscription and subscription.get("SubscriptionArn", "").startswith("arn:"):
            try:
                ctx.client("sns").unsubscribe(SubscriptionArn=subscription["SubscriptionArn"])
            except ClientError as e:
                if not is_not_found(e):
                    raise
        url = observed.state["queue_url"]
        if url and policies.our_statement(observed.state["policy"]) is not None:
            remaining = policies.without_our_statement(observed.state["policy"])
            try:
                ctx.client("sqs").set_queue_attributes(
                    QueueUrl=url, Attributes={"Policy": json.dumps(remaining) if remaining else ""}
                )
            except ClientError as e:
                if not is_not_found(e):
                    raise
