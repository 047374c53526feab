"""One receive at a time per queue, as SQS hands a message to one receiver only.

moto's ReceiveMessage scans the queue and marks what it hands out without a lock: two receives at once (many pollers
of a scaled mapping, or a poller and `dlq show`) can hand out the same message twice and then fail moving a message
to the DLQ twice ("list.remove(x): x not in list", "Set changed size during iteration"). Here each queue's scan runs
under a lock of its own, without waiting; a long poll waits outside it, so one receiver's wait never holds up
another's. Guarded by moto.check_targets (SQSBackend.receive_message's parameters).
"""

from __future__ import annotations

import functools
import threading
import time
from typing import Any

from orderflow.local.patches.patching import Patch

_locks: dict[str, threading.Lock] = {}
_locks_guard = threading.Lock()


def _lock(queue_arn: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(queue_arn, threading.Lock())


def one_receive_at_a_time() -> list[Patch]:
    from moto.sqs.models import SQSBackend

    original = SQSBackend.receive_message

    @functools.wraps(original)
    def receive_message(  # type: ignore[no-untyped-def]
        self, queue_name, count, wait_seconds_timeout, visibility_timeout, message_attribute_names=None
    ) -> Any:
        queue = self.get_queue(queue_name)
        ends = time.monotonic() + (wait_seconds_timeout or 0)
        while True:
            with _lock(queue.queue_arn):
                found = original(self, queue_name, count, 0, visibility_timeout, message_attribute_names)
            remaining = ends - time.monotonic()
            if found or remaining <= 0:
                return found
            queue.wait_for_messages(min(1.0, remaining))  # wakes as soon as a message is sent

    return [Patch(SQSBackend, "receive_message", receive_message)]
