"""SQS queues: the dead-letter queue `OrderQueueDLQ` and the main queue `OrderQueue` that redrives into it."""

from __future__ import annotations

import json
from typing import Any

from orderflow.arns import parse_arn
from orderflow.aws import Aws, or_none
from orderflow.provision import policies
from orderflow.provision.base import Context, Observed, Resource, changed
from orderflow.provision.grants import OBSERVERS, Grant, grant
from orderflow.provision.ops import Call, Operation, Ref, Transient

# SQS blocks a deleted queue's name for 60 s (QueueDeletedRecently); `down` then `up` meets it every time.
QUEUE_NAME_BLOCK_SECONDS = 60.0


def redrive_policy(dlq_arn: str, max_receive_count: int) -> dict[str, Any]:
    return {"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receive_count}


def parse_redrive(text: str | None) -> dict[str, Any] | None:
    """AWS returns maxReceiveCount as a number or a string depending on who wrote it: normalise to int."""
    if not text:
        return None
    policy = json.loads(text)
    return {
        "deadLetterTargetArn": policy.get("deadLetterTargetArn"),
        "maxReceiveCount": int(policy.get("maxReceiveCount", 0)),
    }


def find_queue(ctx: Context, name: str) -> tuple[str, dict[str, str]] | None:
    """The queue's URL and all its attributes (Policy and RedrivePolicy included), read once per observation; None
    when it does not exist. For up to 60 s after DeleteQueue, GetQueueUrl may still answer for the dying queue: a
    queue whose attributes cannot be read is missing."""

    def read() -> tuple[str, dict[str, str]] | None:
        sqs = ctx.client("sqs")
        found = or_none(lambda: sqs.get_queue_url(QueueName=name))
        if found is None:
            return None
        url = found["QueueUrl"]
        attributes = or_none(lambda: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"]))
        return None if attributes is None else (url, attributes["Attributes"])

    return ctx.cached(("queue", name), read)


def redrive_target_name(aws: Aws, name: str) -> str | None:
    """The name of the queue this one redrives to, or None (for telling a stack's queues apart)."""
    sqs = aws.client("sqs")
    found = or_none(lambda: sqs.get_queue_url(QueueName=name))
    attributes = found and or_none(
        lambda: sqs.get_queue_attributes(QueueUrl=found["QueueUrl"], AttributeNames=["RedrivePolicy"])
    )
    redrive = parse_redrive((attributes or {}).get("Attributes", {}).get("RedrivePolicy"))
    return parse_arn(redrive["deadLetterTargetArn"]).name if redrive and redrive["deadLetterTargetArn"] else None


def find_queue_url(ctx: Context, name: str) -> str | None:
    found = find_queue(ctx, name)
    return found[0] if found else None


# What counts as a message a queue holds: waiting, being processed, or delayed (SQS's three approximate counts).
HELD_COUNTS = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesNotVisible",
    "ApproximateNumberOfMessagesDelayed",
)


def messages_held(attributes: dict[str, str]) -> int:
    return sum(int(attributes.get(name, 0)) for name in HELD_COUNTS)


class _Queue(Resource):
    holds = "message(s)"

    def grants(self, ctx: Context) -> list[Grant]:
        queue = self.arn(ctx)
        return [
            grant(OBSERVERS | {"verify", "watch", "dlq"}, ("sqs:GetQueueUrl", "sqs:GetQueueAttributes"), queue),
            grant(OBSERVERS | {"verify"}, ("sqs:ListQueueTags",), queue),
            grant({"up"}, ("sqs:CreateQueue", "sqs:TagQueue", "sqs:SetQueueAttributes"), queue),
            grant({"down"}, ("sqs:DeleteQueue",), queue),
        ]

    def arn(self, ctx: Context) -> str:
        return ctx.arns.queue(self.name(ctx))

    def held(self, observed: Observed) -> tuple[int, str] | None:
        return messages_held(observed.state["attributes"]), self.holds

    def tag_call(self, ctx: Context) -> Call | None:
        # the URL CreateQueue answers (stored by the create, in the same step)
        return Call("sqs", "TagQueue", {"QueueUrl": Ref("url"), "Tags": ctx.config.tags}, self.name(ctx))

    def desired_attributes(self, ctx: Context) -> dict[str, str]:
        raise NotImplementedError

    def read(self, ctx: Context) -> Observed | None:
        sqs = ctx.client("sqs")
        found = find_queue(ctx, self.name(ctx))
        if found is None:
            return None
        url, attributes = found
        tags = or_none(lambda: sqs.list_queue_tags(QueueUrl=url).get("Tags", {}))
        if tags is None:
            return None
        return Observed(state={"url": url, "QueueUrl": url, "attributes": attributes}, tags=tags)

    def _attribute_diff(self, ctx: Context, observed: Observed) -> dict[str, str]:
        current = observed.state["attributes"]
        wanted = self.desired_attributes(ctx)
        return {
            name: value
            for name, value in wanted.items()
            if self._normalise(name, current.get(name)) != self._normalise(name, value)
        }

    @staticmethod
    def _normalise(name: str, value: str | None) -> Any:
        return parse_redrive(value) if name == "RedrivePolicy" else value

    def attributes_at_creation(self, ctx: Context) -> dict[str, str]:
        return self.desired_attributes(ctx)

    def create_operations(self, ctx: Context, vanishing: Observed | None) -> list[Operation]:
        params = {"QueueName": self.name(ctx), "Attributes": self.attributes_at_creation(ctx), "tags": ctx.config.tags}
        blocked = Transient(
            "AWS.SimpleQueueService.QueueDeletedRecently",
            reason=f"SQS keeps the name {self.name(ctx)} for 60 s after a queue of that name was deleted",
        )
        # the 60 s run from the deletion, which was at most 60 s ago; a little slack for clocks
        return [
            Call(
                "sqs",
                "CreateQueue",
                params,
                self.name(ctx),
                retry=(blocked,),
                retry_limit=QUEUE_NAME_BLOCK_SECONDS + 15,
                # made meanwhile with other attributes (with the same ones, CreateQueue just answers its URL)
                exists=("QueueAlreadyExists", "QueueNameExists"),
                store=("url", "QueueUrl"),
            )
        ]

    def update_operations(self, ctx: Context, observed: Observed) -> list[Operation]:
        attributes = self._attribute_diff(ctx, observed)
        if not attributes:
            return []
        current = observed.state["attributes"]
        reasons = [
            line
            for name, value in attributes.items()
            for line in changed(name, self._normalise(name, current.get(name)), self._normalise(name, value))
        ]
        if current.get("Policy"):
            # moto (5.x) clears a queue's Policy on any SetQueueAttributes call that omits it; AWS keeps it.
            # Re-sending the unchanged policy is harmless on AWS and keeps the topic's permission on moto.
            attributes["Policy"] = current["Policy"]
        params = {"QueueUrl": observed.state["url"], "Attributes": attributes}
        return [Call("sqs", "SetQueueAttributes", params, self.name(ctx), tuple(reasons))]

    def delete_operations(self, ctx: Context, observed: Observed) -> list[Operation]:
        return [Call("sqs", "DeleteQueue", {"QueueUrl": observed.state["url"]}, self.name(ctx), gone_ok=True)]


class DeadLetterQueue(_Queue):
    key = "dlq"
    kind = "SQS dead-letter queue"
    holds = "dead letter(s)"

    def grants(self, ctx: Context) -> list[Grant]:
        # `dlq show` peeks (receives, then puts each letter back); `dlq redrive` starts SQS's message move task, which
        # needs ReceiveMessage, DeleteMessage and GetQueueAttributes on the DLQ (the SQS developer guide, "Configure
        # a dead-letter queue redrive"), or moves the letters itself where there is no such task.
        dlq = (
            "sqs:ReceiveMessage",
            "sqs:ChangeMessageVisibility",
            "sqs:DeleteMessage",
            "sqs:StartMessageMoveTask",
            "sqs:ListMessageMoveTasks",
        )
        return [*super().grants(ctx), grant({"dlq"}, dlq, self.arn(ctx))]

    def name(self, ctx: Context) -> str:
        return ctx.config.dlq_name

    def desired_attributes(self, ctx: Context) -> dict[str, str]:
        # Longer than the source queue's retention, so a dead letter never expires before its original would have.
        return {"MessageRetentionPeriod": str(ctx.settings.dlq_retention_seconds)}


class OrderQueue(_Queue):
    key = "queue"
    kind = "SQS queue"
    depends_on = ("dlq",)
    holds = "queued order(s)"

    def grants(self, ctx: Context) -> list[Grant]:
        # A redriven letter is sent back to the queue; `down` takes the topic's statement out of the queue policy.
        return [*super().grants(ctx), grant({"dlq"}, ("sqs:SendMessage",), self.arn(ctx)),
                grant({"down"}, ("sqs:SetQueueAttributes",), self.arn(ctx))]  # fmt: skip

    def name(self, ctx: Context) -> str:
        return ctx.config.queue_name

    def desired_attributes(self, ctx: Context) -> dict[str, str]:
        dlq_arn = ctx.arns.queue(ctx.config.dlq_name)
        return {
            "VisibilityTimeout": str(ctx.settings.visibility_timeout),
            "RedrivePolicy": json.dumps(redrive_policy(dlq_arn, ctx.settings.max_receive_count)),
        }

    def deployed_settings(self, observed: Observed) -> dict[str, Any]:
        attributes = observed.state["attributes"]
        redrive = parse_redrive(attributes.get("RedrivePolicy")) or {}
        return {
            "visibility_timeout": int(attributes.get("VisibilityTimeout", 30)),
            "max_receive_count": redrive.get("maxReceiveCount"),
        }

    def attributes_at_creation(self, ctx: Context) -> dict[str, str]:
        # The topic's permission is part of the new queue: a policy set later takes up to 60 s to apply, and orders
        # published meanwhile would be dropped. (The subscription step keeps it converged afterwards.)
        statement = policies.topic_send_statement(self.arn(ctx), ctx.arns.topic(ctx.config.topic_name))
        return self.desired_attributes(ctx) | {"Policy": json.dumps(policies.with_statement(None, statement))}
