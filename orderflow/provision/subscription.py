"""The SNS -> SQS subscription, with the queue policy that lets the topic deliver.

The guide creates only the subscription; on real AWS that alone delivers nothing, because SQS refuses SNS's
SendMessage without a queue policy naming the topic. The policy is written first, so no message is ever dropped.
"""

from __future__ import annotations

import json

from botocore.exceptions import ClientError

from orderflow.aws import is_not_found
from orderflow.provision import policies
from orderflow.provision.base import Context, Observed, Resource
from orderflow.provision.queues import find_queue_url, queue_attributes


class Subscription(Resource):
    key = "subscription"
    kind = "SNS->SQS subscription"
    owned_with = "topic"

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
        url = find_queue_url(ctx, ctx.config.queue_name)
        policy = None
        if url is not None:
            policy = policies.parse_policy(queue_attributes(ctx, url).get("Policy"))
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
        url = observed.state["queue_url"] or find_queue_url(ctx, ctx.config.queue_name)
        if policies.our_statement(observed.state["policy"]) != self._statement(ctx):
            policy = policies.with_statement(observed.state["policy"], self._statement(ctx))
            ctx.client("sqs").set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})
        if observed.state["subscription"] is None:
            ctx.client("sns").subscribe(
                TopicArn=ctx.arns.topic(ctx.config.topic_name),
                Protocol="sqs",
                Endpoint=self._queue_arn(ctx),
                ReturnSubscriptionArn=True,
            )

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
