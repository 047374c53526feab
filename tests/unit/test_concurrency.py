"""Lambda's concurrency rules and the SQS poller's scaling rule (orderflow/local/runtime/concurrency.py), pure."""

from __future__ import annotations

import pytest

from orderflow.local.iam.mapping_rules import maximum_concurrency_refusal
from orderflow.local.runtime.concurrency import (
    ACCOUNT_LIMIT,
    RESERVED_LIMIT,
    Concurrency,
    PollerScaling,
    Throttled,
    admission,
)


def test_a_reserved_function_runs_at_most_its_reservation_and_zero_throttles_everything():
    assert admission(2, running=1, unreserved_running=0, account_limit=1000, reserved_total=2) is None
    refused = admission(2, running=2, unreserved_running=0, account_limit=1000, reserved_total=2)
    assert refused is not None and refused.reason == RESERVED_LIMIT
    assert admission(0, 0, 0, 1000, 0).reason == RESERVED_LIMIT  # type: ignore[union-attr]


def test_unreserved_functions_share_what_the_reservations_leave_of_the_account():
    assert admission(None, 0, unreserved_running=99, account_limit=1000, reserved_total=900) is None
    refused = admission(None, 0, unreserved_running=100, account_limit=1000, reserved_total=900)
    assert refused is not None and refused.reason == ACCOUNT_LIMIT


def test_concurrency_counts_per_function_and_releases():
    reservations = {"reserved": 1}
    counter = Concurrency(3, lambda region: reservations)
    assert counter.acquire("r", "reserved", None) == 1
    with pytest.raises(Throttled) as caught:
        counter.acquire("r", "reserved", None)  # the embedded AWS's reservation wins over the caller's
    assert caught.value.reason == RESERVED_LIMIT
    assert counter.acquire("r", "other", None) == 1
    assert counter.acquire("r", "other", None) == 2
    with pytest.raises(Throttled):  # 3 in the account, 1 reserved: 2 unreserved
        counter.acquire("r", "third", None)
    assert counter.acquire("elsewhere", "third", None) == 1  # limits are per region
    counter.release("r", "other")
    assert counter.executions("r", "other") == 1
    assert counter.acquire("r", "third", None) == 1


def test_without_the_embedded_state_the_callers_reservation_counts():
    counter = Concurrency(1000)
    counter.acquire("r", "f", 1)
    with pytest.raises(Throttled):
        counter.acquire("r", "f", 1)


def test_the_poller_starts_with_five_batches_and_adds_300_a_minute_while_messages_wait():
    scaling = PollerScaling(minute=60.0, capacity=10_000)
    assert scaling.target(0.0) == 5
    scaling.observe(backlog=True)
    assert scaling.target(59.9) == 5
    assert scaling.target(60.0) == 305
    scaling.observe(backlog=True)
    assert scaling.target(120.0) == 605
    for minute in range(3, 6):
        scaling.observe(backlog=True)
        scaling.target(60.0 * minute)
    assert scaling.rule(300.0) == 1000  # at most 1,000 batches
    assert scaling.target(360.0) == 5  # a minute without waiting messages: back to five


def test_the_mappings_maximum_concurrency_and_the_machine_cap_the_batches():
    capped = PollerScaling(minute=1.0, maximum=2, capacity=100)
    assert capped.target(0.0) == 2
    capped.observe(backlog=True)
    assert capped.target(1.0) == 2
    machine = PollerScaling(minute=1.0, capacity=16)
    assert machine.target(0.0) == 5
    machine.observe(backlog=True)
    assert machine.rule(1.0) == 305 and machine.target(1.0) == 16


@pytest.mark.parametrize(
    ("value", "refused"),
    [(None, False), (2, False), (1000, False), (1, True), (1001, True), (0, True), ("2", True), (True, True)],
)
def test_maximum_concurrency_is_validated_as_the_lambda_api_validates_it(value, refused):
    found = maximum_concurrency_refusal(value)
    assert (found is not None) == refused
    if found is not None:
        assert found[0] == "ValidationException" and "scalingConfig.maximumConcurrency" in found[1]


def test_the_embedded_aws_counts_against_the_account_concurrency_it_was_started_with():
    import os

    from orderflow.local.server.embedded import QUOTA_VARIABLE, EmbeddedAws

    before = os.environ.get(QUOTA_VARIABLE)
    with EmbeddedAws(account_concurrency=10, cloudwatch=False) as aws:
        assert aws.runtime.concurrency.account_limit == 10
        assert os.environ[QUOTA_VARIABLE] == "10"  # moto's own check of PutFunctionConcurrency reads it
    assert os.environ.get(QUOTA_VARIABLE) == before


def test_the_reservations_are_read_once_until_a_lambda_write_says_they_changed():
    reads = []
    reservations = {"f": 1}
    counter = Concurrency(1000, lambda region: reads.append(region) or dict(reservations))
    counter.acquire("r", "f", None)
    counter.release("r", "f")
    counter.acquire("r", "f", None)
    assert reads == ["r"]  # the hot path does not scan the account's functions on every invocation
    reservations["f"] = 0  # PutFunctionConcurrency 0: a Lambda write, which invalidates
    counter.release("r", "f")
    counter.invalidate()
    with pytest.raises(Throttled):
        counter.acquire("r", "f", None)
    assert reads == ["r", "r"]
