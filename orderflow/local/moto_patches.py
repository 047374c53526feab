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

    _make_queue_operations_scale(Queue)
    _applied = True


class _VisibleMessages:
    """moto's `Queue.messages`, lazily: ReceiveMessage stops at the first `count` visible messages instead of
    first building the list of every visible message (O(queue length) per receive)."""

    def __init__(self, messages: list) -> None:
        self._messages = list(messages)  # a C-speed snapshot: safe against concurrent deletes

    def __iter__(self):  # type: ignore[no-untyped-def]
        return (m for m in self._messages if m.visible and not m.delayed)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __bool__(self) -> bool:
        return any(True for _ in self)


def _make_queue_operations_scale(queue_class: type) -> None:
    """With thousands of messages queued, moto's receive and delete scan the whole queue in Python (a receive
    even counts all messages once per message it returns): 10,000 orders took 7 minutes, mostly there. Same
    semantics, early exit."""
    from moto.sqs.exceptions import ReceiptHandleIsInvalid

    queue_class.messages = property(lambda self: _VisibleMessages(self._messages))

    def delete_message(self, receipt_handle: str) -> None:  # type: ignore[no-untyped-def]
        if receipt_handle in self.deleted_messages:
            return  # deleting twice succeeds, as on AWS
        with self._messages_lock:
            for index, message in enumerate(self._messages):
                if message.had_receipt_handle(receipt_handle):
                    self.pending_messages.discard(message)
                    self.deleted_messages.update(message.all_receipt_handles)
                    del self._messages[index]
                    return
        raise ReceiptHandleIsInvalid()

    queue_class.delete_message = delete_message

    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    def is_message_valid_based_on_retention_period(self, queue_name: str, message) -> bool:  # type: ignore[no-untyped-def]
        # moto computes every queue attribute (counting all messages) to read this one, once per received message.
        retention = int(self.get_queue(queue_name).message_retention_period)
        return retention + message.sent_timestamp / 1000 > unix_time()

    SQSBackend.is_message_valid_based_on_retention_period = is_message_valid_based_on_retention_period
