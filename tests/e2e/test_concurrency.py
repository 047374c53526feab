"""Lambda's concurrency trap, end to end through the real CLI on the embedded AWS: a function whose reserved
concurrency is below what its SQS trigger runs is throttled, and healthy orders reach the DLQ; the same stack capped
with the trigger's maximum concurrency loses none. `verify` and `status` warn of the first before any burst."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

BURST = 300
# The least `up` allows (6 x the function timeout): throttled messages come back within seconds.
SHORT = ["--function-timeout", "1", "--visibility-timeout", "6"]


def burst(cli, aws, stack: str) -> tuple[int, int]:
    """BURST orders at once; (written, dead-lettered) once the queue holds none."""
    cli.json("--stack", stack, "publish-test", "--count", str(BURST))
    wait_for(lambda: aws.depth(f"{stack}-OrderQueue") == 0, 240, "the queue to drain")
    table = aws.client("dynamodb")
    written = sum(p["Count"] for p in table.get_paginator("scan").paginate(TableName=f"{stack}-Orders", Select="COUNT"))
    return written - 1, aws.depth(f"{stack}-OrderQueueDLQ")  # less the order verify followed


def test_reserved_concurrency_below_the_triggers_batches_dead_letters_healthy_orders(cli, aws, stack):
    # maxReceiveCount 1: one throttled receive is enough to dead-letter an order (verify warns of that too).
    cli("--local", "--stack", stack, "up", *SHORT, "--max-receive-count", "1")
    aws.client("lambda").put_function_concurrency(
        FunctionName=f"{stack}-ProcessOrderFunction", ReservedConcurrentExecutions=2
    )
    status = cli.json("--stack", stack, "status")
    assert any("reserved concurrency (2) is below the 5 batches" in w for w in status["warnings"])
    cli.json("--stack", stack, "publish-test")
    verified = cli("--local", "--stack", stack, "verify")  # one order passes; the warning comes before any burst
    assert "reserved concurrency (2) is below the 5 batches" in verified.stderr
    assert "maxReceiveCount is 1 while the function can be throttled" in verified.stderr

    written, dead = burst(cli, aws, stack)
    assert dead > 0, "no healthy order reached the DLQ: nothing was throttled"
    assert written + dead == BURST  # throttled, not lost
    watched = wait_for(
        lambda: (w := cli.json("--stack", stack, "watch", "--once", "--since", "10m"))["function"]["throttles"] and w,
        60,
        "the Throttles metric",
    )
    assert watched["function"]["peak_concurrency"] <= 2
    letters = cli.json("--stack", stack, "dlq", "show")["letters"]
    order = next(letter["orderId"] for letter in letters if letter.get("orderId"))
    story = cli.json("--stack", stack, "trace", order)
    throttled = [e for e in story["events"] if e.get("outcome") == "throttled"]
    assert throttled and all(e["inferred"] and e["estimated"] for e in throttled)
    assert story["events"][-1]["hop"] == "dlq"


def test_the_triggers_maximum_concurrency_caps_it_without_a_dead_letter(cli, aws, stack):
    cli("--local", "--stack", stack, "up", *SHORT, "--max-receive-count", "1", "--max-concurrency", "2")
    assert aws.mapping(f"{stack}-ProcessOrderFunction")["ScalingConfig"] == {"MaximumConcurrency": 2}
    cli.json("--stack", stack, "publish-test")
    report = cli.json("--stack", stack, "verify")
    assert report["ok"] and report["warnings"] == []
    written, dead = burst(cli, aws, stack)
    assert (written, dead) == (BURST, 0)
    watched = cli.json("--stack", stack, "watch", "--once", "--since", "10m")
    assert watched["function"]["throttles"] == 0
    # The setting converges like the others: a plain `up` keeps nothing it was not asked for, and says so.
    again = cli("--local", "--stack", stack, "up", *SHORT, "--max-receive-count", "1")
    assert "max_concurrency goes back to its default 0 (the stack has 2" in again.stderr
    assert aws.mapping(f"{stack}-ProcessOrderFunction").get("ScalingConfig") in (None, {})
