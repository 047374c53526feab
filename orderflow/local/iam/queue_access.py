"""The event source mapping's pollers reach SQS in-process, as Lambda's pollers live inside AWS.

Same semantics as over HTTP — moto's SQS backend does the receive, the long poll, the visibility timeout, the
receive count and the redrive to the DLQ — and the same role check as the enforcement middleware, with the same
AccessDenied; only the HTTP round trip and the request parsing are saved. The client mirrors the three boto3 calls
the poller makes (ReceiveMessage, DeleteMessageBatch, ChangeMessageVisibilityBatch) and their response shapes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from botocore.exceptions import ClientError

from orderflow.iam.evaluation import denial_message
from orderflow.local.iam.identities import Identities

NON_EXISTENT_QUEUE = "AWS.SimpleQueueService.NonExistentQueue"


def _error(code: str, message: str, operation: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}, "ResponseMetadata": {}}, operation)


def message_dict(message: Any) -> dict[str, Any]:
    """One received message as ReceiveMessage answers it with AttributeNames and MessageAttributeNames "All"."""
    found: dict[str, Any] = {
        "MessageId": message.id,
        "ReceiptHandle": message.receipt_handle,
        "MD5OfBody": message.body_md5,
        "Body": message.body,
    }
    if message.message_attributes:
        found["MessageAttributes"] = message.message_attributes
        found["MD5OfMessageAttributes"] = message.attribute_md5
    attributes = {
        "SenderId": message.sender_id,
        "SentTimestamp": str(message.sent_timestamp),
        "ApproximateReceiveCount": str(message.approximate_receive_count),
        "ApproximateFirstReceiveTimestamp": str(message.approximate_first_receive_timestamp),
    }
    if message.deduplication_id is not None:
        attributes["MessageDeduplicationId"] = message.deduplication_id
    if message.group_id is not None:
        attributes["MessageGroupId"] = message.group_id
    if (message.system_attributes or {}).get("AWSTraceHeader"):
        attributes["AWSTraceHeader"] = message.system_attributes["AWSTraceHeader"]
    found["Attributes"] = attributes
    return found


class InProcessQueues:
    """An SQS client for one role session (identified by its access key), served by moto's backend directly."""

    def __init__(self, roles: Identities, access_key: str, region: str) -> None:
        self._roles = roles
        self._access_key = access_key
        self._region = region

    def _backend_and_name(self, queue_url: str, action: str, operation: str) -> tuple[Any, str]:
        from moto.sqs.models import sqs_backends

        account, _, name = urlparse(queue_url).path.strip("/").partition("/")
        queue_arn = f"arn:aws:sqs:{self._region}:{account}:{name}"
        caller = self._roles.caller(self._access_key)
        if caller is None:
            raise _error("InvalidClientTokenId", "The security token included in the request is invalid.", operation)
        verdict = self._roles.authorize(caller, action, queue_arn, self._region)
        if verdict.decision != "allow":
            raise _error("AccessDenied", denial_message(caller.arn, action, queue_arn, verdict), operation)
        return sqs_backends[account][self._region], name

    def _call(self, operation: str, call: Any) -> Any:
        from moto.sqs.exceptions import QueueDoesNotExist

        try:
            return call()
        except QueueDoesNotExist as e:
            raise _error(NON_EXISTENT_QUEUE, "The specified queue does not exist.", operation) from e

    def receive_message(
        self,
        QueueUrl: str,  # boto3's parameter names, so the poller calls either client alike
        MaxNumberOfMessages: int = 1,
        WaitTimeSeconds: int = 0,
        **_ignored: Any,
    ) -> dict[str, Any]:
        backend, name = self._backend_and_name(QueueUrl, "sqs:ReceiveMessage", "ReceiveMessage")

        def receive() -> list[Any]:
            queue = backend.get_queue(name)
            return backend.receive_message(
                name, MaxNumberOfMessages, WaitTimeSeconds, queue.visibility_timeout, ["All"]
            )

        messages = self._call("ReceiveMessage", receive)
        return {"Messages": [message_dict(m) for m in messages]} if messages else {}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        backend, name = self._backend_and_name(QueueUrl, "sqs:DeleteMessage", "DeleteMessageBatch")
        done, failed = self._call("DeleteMessageBatch", lambda: backend.delete_message_batch(name, Entries))
        return {"Successful": [{"Id": i} for i in done], "Failed": failed}

    def change_message_visibility_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        backend, name = self._backend_and_name(QueueUrl, "sqs:ChangeMessageVisibility", "ChangeMessageVisibilityBatch")
        done, failed = self._call(
            "ChangeMessageVisibilityBatch", lambda: backend.change_message_visibility_batch(name, Entries)
        )
        return {"Successful": [{"Id": i} for i in done], "Failed": failed}
