"""The concurrency trap warnings (orderflow/flow/advice.py): pure, and read from a stack in moto."""

from __future__ import annotations

from orderflow.flow.advice import concurrency_warnings, stack_warnings
from orderflow.provision import operations


def test_a_healthy_stack_gets_no_warning():
    assert concurrency_warnings(None, None, 3, 30, 3) == []
    assert concurrency_warnings(10, 10, 5, 30, 5) == []
    assert concurrency_warnings(None, 2, 3, 30, 3) == []  # capped by the trigger: nothing is throttled


def test_reserved_concurrency_below_what_the_trigger_runs_is_the_trap():
    found = concurrency_warnings(2, None, 5, 30, 3)
    assert len(found) == 1 and "reserved concurrency (2) is below the 5 batches" in found[0]
    assert "--max-concurrency 2" in found[0]
    assert "maximum concurrency (10)" in concurrency_warnings(4, 10, 5, 30, 3)[0]
    assert "every invocation is throttled" in concurrency_warnings(0, None, 5, 30, 3)[0]


def test_a_low_max_receive_count_is_flagged_only_where_throttling_can_happen():
    assert any("maxReceiveCount is 3" in w for w in concurrency_warnings(2, None, 3, 30, 3))
    assert any("maxReceiveCount is 3" in w for w in concurrency_warnings(100, None, 3, 30, 3))  # scales past 100
    assert concurrency_warnings(100, 50, 3, 30, 3) == []


def test_a_visibility_timeout_under_six_function_timeouts():
    found = concurrency_warnings(None, None, 3, 30, 10)
    assert found == [
        "the queue's visibility timeout (30s) is under 6 x the function timeout (10s = 60s): a slow batch can be "
        "handed out again while it is still running"
    ]


def test_the_warnings_are_read_from_the_stack(ctx):
    operations.converge(ctx)
    assert stack_warnings(ctx) == []
    ctx.client("lambda").put_function_concurrency(FunctionName=ctx.config.function_name, ReservedConcurrentExecutions=2)
    found = stack_warnings(ctx)
    assert len(found) == 2 and "reserved concurrency (2)" in found[0] and "maxReceiveCount is 3" in found[1]
