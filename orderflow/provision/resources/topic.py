"""SNS standard topic `OrderTopic`."""

from __future__ import annotations

from orderflow.aws import or_none
from orderflow.provision.base import Context, Observed, Resource
from orderflow.provision.grants import OBSERVERS, Grant, grant
from orderflow.provision.ops import Call, Operation
from orderflow.stack import tag_dict, tag_list


class Topic(Resource):
    key = "topic"
    kind = "SNS topic"

    def grants(self, ctx: Context) -> list[Grant]:
        topic = self.arn(ctx)
        reads = ("sns:GetTopicAttributes", "sns:ListTagsForResource", "sns:ListSubscriptionsByTopic")
        return [
            grant(OBSERVERS | {"verify"}, reads, topic),
            grant({"up"}, ("sns:CreateTopic", "sns:TagResource"), topic),
            grant({"down"}, ("sns:DeleteTopic",), topic),
            grant({"publish-test", "verify"}, ("sns:Publish",), topic),
        ]

    def name(self, ctx: Context) -> str:
        return ctx.config.topic_name

    def tag_call(self, ctx: Context) -> Call | None:
        params = {"ResourceArn": self.arn(ctx), "Tags": tag_list(ctx.config.tags)}
        return Call("sns", "TagResource", params, self.name(ctx))

    def arn(self, ctx: Context) -> str:
        return ctx.arns.topic(self.name(ctx))

    def read(self, ctx: Context) -> Observed | None:
        # Existence first, from the topic itself: some endpoints answer ListTagsForResource with an empty list for a
        # topic that does not exist, which would make a missing topic look like someone else's.
        sns = ctx.client("sns")

        def read() -> list[dict[str, str]]:
            sns.get_topic_attributes(TopicArn=self.arn(ctx))
            return sns.list_tags_for_resource(ResourceArn=self.arn(ctx)).get("Tags", [])

        tags = or_none(read)
        return None if tags is None else Observed(state={}, tags=tag_dict(tags))

    def create_operations(self, ctx: Context, vanishing: Observed | None) -> list[Operation]:
        params = {"Name": self.name(ctx), "Tags": tag_list(ctx.config.tags)}
        return [Call("sns", "CreateTopic", params, self.name(ctx))]

    def update_operations(self, ctx: Context, observed: Observed) -> list[Operation]:
        return []  # a topic has no setting of ours that can drift

    def delete_operations(self, ctx: Context, observed: Observed) -> list[Operation]:
        # DeleteTopic is idempotent on AWS: deleting a missing topic succeeds. It deletes the topic's subscriptions.
        return [Call("sns", "DeleteTopic", {"TopicArn": self.arn(ctx)}, self.name(ctx), gone_ok=True)]
