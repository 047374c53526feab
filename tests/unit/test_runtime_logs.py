"""The log events the runtime writes for one invocation."""

from __future__ import annotations

import signal
from pathlib import Path

from orderflow.local.runtime.environment.worker import FunctionSpec, Invocation, exit_reason
from orderflow.local.runtime.logs import report_lines

SPEC = FunctionSpec(
    "fn",
    "arn:aws:lambda:r:1:function:fn",
    "r",
    "index.h",
    "python3.13",
    3,
    128,
    {},
    "sha",
    Path("/tmp"),
    "/aws/lambda/fn",
)


def test_lines_are_in_lambdas_form_and_chronological():
    invocation = Invocation(
        "rid",
        True,
        duration_ms=12.5,
        init_ms=80.0,
        max_memory_mb=50,
        output=[(1_000_000, "hello"), (1_000_900, "late line")],
    )
    events = report_lines(SPEC, invocation, started_ms=999_990)
    messages = [m for _, m in events]
    assert messages[0] == "START RequestId: rid Version: $LATEST"
    assert messages[1:3] == ["hello", "late line"]
    assert messages[3] == "END RequestId: rid"
    assert messages[4] == (
        "REPORT RequestId: rid\tDuration: 12.50 ms\tBilled Duration: 13 ms\tMemory Size: 128 MB\t"
        "Max Memory Used: 50 MB\tInit Duration: 80.00 ms"
    )
    stamps = [ts for ts, _ in events]
    assert stamps == sorted(stamps)


def test_a_timeout_and_a_crash_are_logged_as_lambda_does():
    timed_out = Invocation("t", False, timed_out=True, duration_ms=3001, error={"errorType": "Sandbox.Timedout"})
    assert any(m.endswith("t Task timed out after 3.00 seconds") for _, m in report_lines(SPEC, timed_out, 0))
    message = "RequestId: c Error: Runtime exited with error: signal: killed"
    crashed = Invocation("c", False, duration_ms=5, error={"errorType": "Runtime.ExitError", "errorMessage": message})
    messages = [m for _, m in report_lines(SPEC, crashed, 0)]
    assert messages[1:3] == [message, "Runtime.ExitError"]


def test_exit_reasons_read_as_lambdas_do():
    assert exit_reason(-signal.SIGKILL) == "signal: killed"
    assert exit_reason(-signal.SIGSEGV) == "signal: segmentation fault"
    assert exit_reason(1) == "exit status 1"
