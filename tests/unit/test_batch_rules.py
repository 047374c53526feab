"""ReportBatchItemFailures, decided exactly as the Lambda SQS poller decides it."""

from __future__ import annotations

import pytest

from orderflow.local.runtime.batch import failed_message_ids

IDS = ["a", "b", "c"]
ALL = set(IDS)


@pytest.mark.parametrize(
    ("succeeded", "payload", "report", "expected"),
    [
        (False, None, True, ALL),  # exception or timeout: the whole batch
        (False, {"batchItemFailures": []}, True, ALL),
        (True, None, True, set()),  # null response
        (True, {}, True, set()),  # empty response
        (True, "", True, set()),
        (True, {"batchItemFailures": []}, True, set()),
        (True, {"batchItemFailures": None}, True, set()),
        (True, {"batchItemFailures": [{"itemIdentifier": "b"}]}, True, {"b"}),
        (True, {"batchItemFailures": [{"itemIdentifier": "a"}, {"itemIdentifier": "c"}]}, True, {"a", "c"}),
        (True, {"batchItemFailures": [{"itemIdentifier": "zzz"}]}, True, ALL),  # unknown id
        (True, {"batchItemFailures": [{"itemIdentifier": ""}]}, True, ALL),  # empty id
        (True, {"batchItemFailures": [{"itemIdentifier": None}]}, True, ALL),  # null id
        (True, {"batchItemFailures": [{"id": "a"}]}, True, ALL),  # wrong key
        (True, {"batchItemFailures": "a"}, True, ALL),  # not a list
        (True, ["a"], True, ALL),  # not an object
        (True, {"batchItemFailures": [{"itemIdentifier": "b"}]}, False, set()),  # not enabled on the mapping
    ],
)
def test_failed_message_ids(succeeded, payload, report, expected):
    assert failed_message_ids(succeeded, payload, IDS, report) == expected
