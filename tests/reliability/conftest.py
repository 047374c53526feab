"""The reliability suite: the real CLI and the real handler on an embedded AWS that this process controls, so
faults can be injected into it (failing API calls, killed function processes, a stopped runtime)."""

from __future__ import annotations

import json
import threading
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest

from orderflow.local.server.embedded import EmbeddedAws
from orderflow.local.server.wire import error_response, is_read, operation_of
from tests.e2e.conftest import Aws, Cli

# What the runtime and the handler do while messages flow; everything else a CLI command writes is provisioning.
DATA_PLANE = {
    "ReceiveMessage",
    "DeleteMessage",
    "DeleteMessageBatch",
    "ChangeMessageVisibility",
    "ChangeMessageVisibilityBatch",
    "SendMessage",
    "SendMessageBatch",
    "PutItem",
    "PutLogEvents",
    "CreateLogStream",
    "Publish",
    "PublishBatch",
    # The embedded AWS's own CloudWatch in the background (Lambda's and SQS's metrics, alarm states): never up's.
    "PutMetricData",
    "SetAlarmState",
    "GetCallerIdentity",
    "AssumeRole",  # the runtime obtaining a function's execution-role credentials, as Lambda does
}


class Faults:
    """WSGI middleware that makes chosen AWS calls fail, on demand."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rule: Callable[[str], str | None] | None = None
        self.app: Any = None

    def wrap(self, app: Any) -> Faults:
        self.app = app
        return self

    def __call__(self, environ, start_response):
        operation = operation_of(environ)
        with self._lock:
            code = self._rule(operation) if operation and self._rule else None
        if code:
            return error_response(environ, start_response, code, f"injected fault on {operation}")
        return self.app(environ, start_response)

    def fail(self, operations: set[str], code: str) -> None:
        """Every call of these operations fails with `code` until clear()."""
        self._rule = lambda op: code if op in operations else None

    def fail_nth_provisioning_write(self, n: int) -> None:
        """Only the n-th provisioning write from now on fails: an interruption after step n-1."""
        seen = {"writes": 0}

        def rule(op: str) -> str | None:
            if is_read(op) or op in DATA_PLANE:
                return None
            seen["writes"] += 1
            return "InjectedInterruption" if seen["writes"] == n else None

        self._rule = rule

    def clear(self) -> None:
        self._rule = None


# Module scope, not session: the in-process embedded AWS patches moto while it runs, and the tests that run after this
# module (in any order: they are shuffled) must see moto as it is.
@pytest.fixture(scope="module")
def faults() -> Faults:
    return Faults()


@pytest.fixture(scope="module")
def embedded(faults):
    aws = EmbeddedAws(port=0, wrap_app=faults.wrap).start()
    yield aws
    aws.stop()


@pytest.fixture(autouse=True)
def no_faults_left(faults, embedded):
    yield
    faults.clear()
    embedded.start_runtime()


@pytest.fixture(scope="module")
def aws(embedded) -> Aws:
    return Aws(embedded.endpoint)


@pytest.fixture(scope="module")
def cli(embedded, tmp_path_factory) -> Cli:
    """The real CLI aimed at this process's embedded AWS (as --local would be, but with faults injectable)."""
    return Cli(
        tmp_path_factory.mktemp("home"),
        target=[],
        always=["--endpoint-url", embedded.endpoint, "--region", "us-east-1"],
        env={"AWS_ACCESS_KEY_ID": "reliability", "AWS_SECRET_ACCESS_KEY": "reliability"},
    )


@pytest.fixture
def stack(cli):
    name = f"r{uuid.uuid4().hex[:8]}"
    yield name
    cli("--stack", name, "down", "--yes", check=False)


def table_ids(aws: Aws, table: str) -> list[str]:
    paginator = aws.client("dynamodb").get_paginator("scan")
    return [
        item["orderId"]["S"]
        for page in paginator.paginate(TableName=table, ProjectionExpression="orderId")
        for item in page["Items"]
    ]


def report(line: str) -> None:
    """Figures for docs/reliability.md (run pytest with -s to see them)."""
    print(f"\nRELIABILITY {line}")


def function_log(aws: Aws, stack: str) -> list[str]:
    return aws.log_messages(f"/aws/lambda/{stack}-ProcessOrderFunction")


def died_invocations(messages: list[str]) -> int:
    """Invocations whose process died under them (killed, crashed), as the runtime logs them."""
    return sum(m == "Runtime.ExitError" for m in messages)


def pipeline_state(aws: Aws, stack: str) -> str:
    """Where the orders are and how the function fared: what a timed-out wait reports."""
    messages = function_log(aws, stack)
    outcomes = Counter(json.loads(m)["outcome"] for m in messages if m.startswith('{"event": "order"'))
    errors = {
        "died": died_invocations(messages),
        "timed out": sum("Task timed out after" in m for m in messages),
    }
    return (
        f"{len(table_ids(aws, f'{stack}-Orders'))} items, queue {aws.depth(f'{stack}-OrderQueue')}, "
        f"DLQ {aws.depth(f'{stack}-OrderQueueDLQ')}, handler outcomes {dict(outcomes)}, failed invocations {errors}"
    )
