"""Where moto differs from AWS in ways that matter to the pipeline, the embedded server behaves like AWS.

Applied only inside the embedded AWS process; unit tests with mock_aws see moto as it is.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Callable
from typing import Any

_applied = False
# Returns the running Lambda runtime's FunctionHost (or None while it is stopped); set by the embedded server.
_function_host: Callable[[], Any] | None = None


def route_invocations_to(function_host: Callable[[], Any]) -> None:
    global _function_host
    _function_host = function_host


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
    _run_invocations_in_orderflows_runtime()
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


def _run_invocations_in_orderflows_runtime() -> None:
    """The Invoke API (`aws lambda invoke`) runs the deployed code in orderflow's runtime, as the SQS pollers do,
    instead of moto's Docker container or its canned "Simple Lambda happy path OK"."""
    from moto.awslambda.models import LambdaFunction

    from orderflow.local.runtime.cloudwatch import report_lines

    def invoke(self, body, request_headers, response_headers):  # type: ignore[no-untyped-def]
        host = _function_host() if _function_host else None
        if host is None:
            response_headers["x-amz-function-error"] = "Unhandled"
            error = {"errorType": "Runtime.Unavailable", "errorMessage": "orderflow's Lambda runtime is stopped"}
            return json.dumps(error).encode()
        event = json.loads(body) if body else {}
        if request_headers.get("x-amz-invocation-type") == "Event":
            threading.Thread(target=host.invoke, args=(self.function_arn, event), daemon=True).start()
            return b""
        started_ms = int(time.time() * 1000)
        invocation = host.invoke(self.function_arn, event)
        if request_headers.get("x-amz-log-type") == "Tail":
            lines = "\n".join(line for _, line in report_lines(host.spec(self.function_arn), invocation, started_ms))
            response_headers["x-amz-log-result"] = base64.b64encode(lines.encode()[-4096:]).decode()
        if not invocation.succeeded:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(invocation.error).encode()
        return json.dumps(invocation.payload).encode()

    LambdaFunction.invoke = invoke
