"""Where moto differs from AWS in ways that matter to the pipeline, the embedded server behaves like AWS.

Applied only inside the embedded AWS process; unit tests with mock_aws see moto as it is.
"""

from __future__ import annotations

_applied = False


def apply() -> None:
    global _applied
    if _applied:
        return
    from moto.sqs.models import Queue

    # moto invokes SQS-triggered functions itself, inside SendMessage/Publish: once, without retries, burning
    # receive counts (or deleting the messages unprocessed). orderflow's runtime polls instead, as AWS does, so the
    # queue never learns about mappings: reads give an empty dict and moto's own assignment is ignored.
    Queue.lambda_event_source_mappings = property(lambda self: {}, lambda self, value: None)

    # moto clears a queue's Policy on any SetQueueAttributes call that omits it; AWS keeps it.
    original_set_attributes = Queue._set_attributes

    def set_attributes_keeping_policy(self, attributes, now=None):  # type: ignore[no-untyped-def]
        policy = getattr(self, "policy", None)
        original_set_attributes(self, attributes, now)
        if "Policy" not in attributes:
            self.policy = policy

    Queue._set_attributes = set_attributes_keeping_policy
    _applied = True
