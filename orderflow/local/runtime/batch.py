"""Which messages of a batch failed, decided exactly as the Lambda SQS poller decides it. Pure."""

from __future__ import annotations

from typing import Any


def failed_message_ids(succeeded: bool, payload: Any, batch_ids: list[str], report_item_failures: bool) -> set[str]:
    """The message ids to leave on the queue (they come back after the visibility timeout).

    An error or a timeout fails the whole batch. Without ReportBatchItemFailures any successful return succeeds the
    whole batch. With it: a null/empty response or list succeeds everything; a listed id fails that message; an
    invalid response (not an object, a non-list, a null/empty/unknown id, a wrong key) fails the whole batch.
    """
    everything = set(batch_ids)
    if not succeeded:
        return everything
    if not report_item_failures or payload is None or payload == {} or payload == "":
        return set()
    if not isinstance(payload, dict):
        return everything
    failures = payload.get("batchItemFailures")
    if failures is None:
        return set()
    if not isinstance(failures, list):
        return everything
    failed: set[str] = set()
    for failure in failures:
        identifier = failure.get("itemIdentifier") if isinstance(failure, dict) else None
        if not isinstance(identifier, str) or identifier not in everything:
            return everything
        failed.add(identifier)
    return failed
