"""The SQS side of an event source mapping: long-poll, invoke, delete what succeeded, leave the rest to SQS.

Failed messages are neither deleted nor made visible early: they return after the queue's visibility timeout, and
SQS's own redrive moves them to the dead-letter queue after maxReceiveCount receives — as on AWS.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from orderflow.arns import parse_arn
from orderflow.aws import error_code, is_access_denied, is_not_found
from orderflow.local.runtime.batch import failed_message_ids
from orderflow.local.runtime.concurrency import Throttled
from orderflow.local.runtime.credentials import RoleCredentials, RoleNotAssumable
from orderflow.local.runtime.events import sqs_event
from orderflow.local.runtime.functions import FunctionHost, region_of

log = logging.getLogger("orderflow.local.runtime")

LONG_POLL_SECONDS = 1  # short enough that a disabled or deleted mapping stops within a second or two
# How long a poller refused by the role waits before trying again (AWS keeps retrying while the mapping is enabled).
REFUSED_RETRY_SECONDS = 1.0
# GetEventSourceMapping's LastProcessingResult, as orderflow's poller last met it.
OK = "OK"
# How long a poller whose batch was throttled waits before it receives again: a breath, not a cure. AWS documents no
# back-off that would spare the next batch, and the trap it describes (healthy messages dead-lettered under reserved
# concurrency) is what a poller that keeps receiving produces.
THROTTLED_BACKOFF_SECONDS = 0.1


def receive_problem(function_name: str) -> str:
    return (
        f"PROBLEM: Lambda function {function_name} execution role does not have permissions to call "
        "receiveMessage on SQS"
    )


def queue_url(endpoint: str, queue_arn: str) -> str:
    """A queue's URL from its ARN, as Lambda's poller knows it without calling GetQueueUrl (which the execution
    role need not allow): the embedded AWS serves queues at <endpoint>/<account>/<name>."""
    arn = parse_arn(queue_arn)
    return f"{endpoint}/{arn.account}/{arn.resource}"


@dataclass(frozen=True)
class MappingConfig:
    uuid: str
    function_arn: str
    queue_arn: str
    batch_size: int
    batching_window: int
    report_item_failures: bool
    maximum_concurrency: int | None  # ScalingConfig.MaximumConcurrency


def mapping_config(mapping: dict[str, Any]) -> MappingConfig:
    maximum = (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency")
    return MappingConfig(
        uuid=mapping["UUID"],
        function_arn=mapping["FunctionArn"],
        queue_arn=mapping["EventSourceArn"],
        batch_size=int(mapping.get("BatchSize") or 10),
        batching_window=int(mapping.get("MaximumBatchingWindowInSeconds") or 0),
        report_item_failures="ReportBatchItemFailures" in (mapping.get("FunctionResponseTypes") or []),
        maximum_concurrency=int(maximum) if maximum else None,
    )


class QueuePoller(threading.Thread):
    """One of a mapping's concurrent pollers. Every SQS call it makes is signed with the function's execution role,
    as Lambda's pollers are, so a role without sqs:ReceiveMessage or sqs:DeleteMessage has AWS's consequences."""

    def __init__(
        self,
        config: Callable[[], MappingConfig],
        sqs_client: Callable[[RoleCredentials], Any],
        host: FunctionHost,
        stop: threading.Event,
        report: Callable[[str, str], None] = lambda uuid, result: None,
        observe: Callable[[bool], None] = lambda backlog: None,
    ) -> None:
        initial = config()
        super().__init__(name=f"poller-{initial.uuid[:8]}", daemon=True)
        self._config = config
        self._sqs_client = sqs_client
        self._host = host
        self._stopping = stop
        self._report = report
        # Told after each receive whether it came back full: messages still waiting make the mapping scale up.
        self._observe = observe
        self._client: tuple[RoleCredentials, Any] | None = None
        # Clear while a receive is under way: once stopped, a poller outside one never receives again.
        self._not_receiving = threading.Event()
        self._not_receiving.set()

    def join_receiving(self, timeout: float) -> bool:
        """Wait (at most `timeout`) until no receive of this poller is under way; after its stop, none starts."""
        return self._not_receiving.wait(timeout)

    def _url(self, queue_arn: str) -> str:
        return queue_url(self._host.endpoint, queue_arn)

    @property
    def _sqs(self) -> Any:
        assert self._client is not None
        return self._client[1]

    def _use_role(self, function_arn: str) -> None:
        """A client signed with the function's current role credentials (new ones when the role changed)."""
        credentials = self._host.credentials(function_arn)
        if self._client is None or self._client[0] != credentials:
            self._client = (credentials, self._sqs_client(credentials))

    def _refused(self, uuid: str, problem: str) -> None:
        self._report(uuid, problem)
        log.info("poller %s: %s", self.name, problem)
        self._stopping.wait(REFUSED_RETRY_SECONDS)

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                self.poll_once()
            except ClientError as e:
                if self._stopping.is_set():
                    break
                # A deleted queue is routine during `down` (the trigger goes first; the watcher stops this poller
                # within a sync interval), so it is not worth a warning on the user's terminal.
                level = logging.INFO if is_not_found(e) else logging.WARNING
                log.log(level, "poller %s: %s; retrying in 1 s", self.name, e)
                self._stopping.wait(1.0)
            except Exception:  # outlive any single failure, as Lambda does
                if self._stopping.is_set():
                    break
                log.exception("poller %s: batch failed; retrying in 1 s", self.name)
                self._stopping.wait(1.0)

    def _gather(self, config: MappingConfig) -> list[dict[str, Any]]:
        """Up to BatchSize messages; with a batching window, keep receiving until full or the window closes."""
        url = self._url(config.queue_arn)
        messages: list[dict[str, Any]] = []
        window_ends = time.monotonic() + config.batching_window
        while not self._stopping.is_set():
            wanted = min(10, config.batch_size - len(messages))
            wait = (
                LONG_POLL_SECONDS
                if not messages
                else max(0, min(LONG_POLL_SECONDS, int(window_ends - time.monotonic())))
            )
            received = self._sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=wanted,
                WaitTimeSeconds=wait,
                AttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            messages += received
            self._observe(len(received) >= wanted)
            if len(messages) >= config.batch_size or time.monotonic() >= window_ends:
                break
            if not received and not messages:
                break
        return messages

    def poll_once(self) -> None:
        config = self._config()
        messages = self._receive(config)
        if not messages:
            return
        if self._stopping.is_set():
            self._hand_back(config, messages)  # stopped while receiving: not after the visibility timeout
            return
        event = sqs_event(messages, config.queue_arn, region_of(config.queue_arn))
        try:
            invocation = self._host.invoke(config.function_arn, event)
        except RoleNotAssumable as e:  # the trust policy changed since the receive: the messages return later
            self._refused(config.uuid, f"PROBLEM: {e}")
            return
        except Throttled as e:
            # Received but not invoked: the messages stay in flight and return after the visibility timeout with
            # their receive count raised, so a throttled message moves towards the DLQ as a failed one does.
            log.info("poller %s: %d message(s) throttled (%s)", self.name, len(messages), e.reason)
            self._stopping.wait(THROTTLED_BACKOFF_SECONDS)
            return
        ids = [m["MessageId"] for m in messages]
        failed = failed_message_ids(invocation.succeeded, invocation.payload, ids, config.report_item_failures)
        self._delete_processed(config, [m for m in messages if m["MessageId"] not in failed])

    def _receive(self, config: MappingConfig) -> list[dict[str, Any]]:
        """A batch, received with the function's role; a refusal is reported (LastProcessingResult), not raised."""
        try:
            self._use_role(config.function_arn)
            self._not_receiving.clear()
            try:
                return self._gather(config)
            finally:
                self._not_receiving.set()
        except RoleNotAssumable as e:
            self._refused(config.uuid, f"PROBLEM: {e}")
        except ClientError as e:
            if not is_access_denied(e):
                raise
            self._refused(config.uuid, receive_problem(parse_arn(config.function_arn).name))
        return []

    def _hand_back(self, config: MappingConfig, messages: list[dict[str, Any]]) -> None:
        entries = [
            {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"], "VisibilityTimeout": 0} for i, m in enumerate(messages)
        ]
        try:
            self._sqs.change_message_visibility_batch(QueueUrl=self._url(config.queue_arn), Entries=entries)
        except ClientError as e:  # a role without sqs:ChangeMessageVisibility: they return after the timeout
            log.info("poller %s: could not hand back %d message(s): %s", self.name, len(messages), e)

    def _delete_processed(self, config: MappingConfig, done: list[dict[str, Any]]) -> None:
        """Delete what the function processed, then report OK. Processed but refused deletion, the messages come back
        after the visibility timeout and SQS's redrive finally moves them to the DLQ — what AWS does to a role
        without sqs:DeleteMessage."""
        try:
            for start in range(0, len(done), 10):
                chunk = done[start : start + 10]
                self._sqs.delete_message_batch(
                    QueueUrl=self._url(config.queue_arn),
                    Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)],
                )
        except ClientError as e:
            if not is_access_denied(e):
                raise
            log.warning("poller %s: could not delete %d processed message(s): %s", self.name, len(done), e)
            self._report(config.uuid, f"PROBLEM: {e.response.get('Error', {}).get('Message', error_code(e))}")
            return
        self._report(config.uuid, OK)
