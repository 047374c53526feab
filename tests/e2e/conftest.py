"""End-to-end plumbing: the real `orderflow` CLI, as a subprocess, against a real embedded AWS."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

REGION = "us-east-1"
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Cli:
    """Runs `python -m orderflow …` exactly as a user's shell would, with an isolated state directory.

    `target` goes before every command's own arguments of `json()` (e.g. ["--local"]), `always` before every
    command (e.g. an endpoint); `env` adds to a clean environment without the caller's AWS or orderflow settings."""

    def __init__(
        self, home: Path, target: list[str] | None = None, always: list[str] | None = None, env: dict | None = None
    ) -> None:
        self.target = ["--local"] if target is None else target
        self.always = always or []
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ORDERFLOW_"))} | {
            "ORDERFLOW_HOME": str(home),
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_COLOR": "1",
            "COLUMNS": "200",
            **(env or {}),
        }

    def __call__(self, *args: str, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "orderflow", *self.always, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            cwd=PROJECT_ROOT,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"orderflow {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def json(self, *args: str, **kwargs: Any) -> dict[str, Any]:
        return json.loads(self(*self.target, "--json", *args, **kwargs).stdout)


@pytest.fixture(scope="session")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("orderflow-home")


@pytest.fixture(scope="session")
def cli(home) -> Cli:
    return Cli(home)


@pytest.fixture(scope="session")
def embedded(cli) -> str:
    """One background embedded AWS for the whole session, started and stopped through the CLI."""
    started = cli("--json", "local", "start", "--port", str(free_port()))
    endpoint = json.loads(started.stdout)["endpoint"]
    yield endpoint
    cli("local", "stop", check=False)


class Aws:
    """A plain boto3 view of the embedded AWS, for assertions and for the odd hand-made fault."""

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint
        session = boto3.Session(aws_access_key_id="test", aws_secret_access_key="test", region_name=REGION)
        self.client = lambda service: session.client(service, endpoint_url=endpoint)

    def item(self, table: str, order_id: str) -> dict | None:
        return (
            self.client("dynamodb")
            .get_item(TableName=table, Key={"orderId": {"S": order_id}}, ConsistentRead=True)
            .get("Item")
        )

    def queue_url(self, name: str) -> str:
        return self.client("sqs").get_queue_url(QueueName=name)["QueueUrl"]

    def depth(self, name: str) -> int:
        attributes = self.client("sqs").get_queue_attributes(
            QueueUrl=self.queue_url(name),
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])

    def log_messages(self, group: str) -> list[str]:
        try:
            pages = self.client("logs").get_paginator("filter_log_events").paginate(logGroupName=group)
            return [e["message"] for page in pages for e in page["events"]]
        except self.client("logs").exceptions.ResourceNotFoundException:
            return []

    def handler_records(self, group: str) -> list[dict]:
        return [json.loads(m) for m in self.log_messages(group) if m.startswith('{"event": "order"')]

    def publish(self, topic: str, message: str) -> str:
        arn = f"arn:aws:sns:{REGION}:{self.account}:{topic}"
        return self.client("sns").publish(TopicArn=arn, Message=message)["MessageId"]

    def mapping(self, function: str) -> dict:
        [mapping] = self.client("lambda").list_event_source_mappings(FunctionName=function)["EventSourceMappings"]
        return mapping

    @property
    def account(self) -> str:
        return self.client("sts").get_caller_identity()["Account"]


@pytest.fixture(scope="session")
def aws(embedded) -> Aws:
    return Aws(embedded)


@pytest.fixture
def stack(cli, embedded, request):
    """A fresh stack name per test (stacks live side by side); torn down afterwards."""
    name = f"t{uuid.uuid4().hex[:8]}"
    yield name
    cli("--local", "--stack", name, "down", "--yes", check=False)


def wait_for(
    condition: Callable[[], Any],
    timeout: float,
    what: str,
    interval: float = 0.2,
    state: Callable[[], str] | None = None,
) -> Any:
    """Poll until `condition` is truthy; on timeout, `state` says what was seen instead (for a CI log to explain)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    seen = f"; seen: {state()}" if state else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{seen}")


def mapping_stopped(home: Path, uuid: str, timeout: float = 15) -> None:
    """Wait until the embedded AWS's runtime has stopped the mapping's pollers (its log says so)."""
    wait_for(
        lambda: f"mapping {uuid} stopped" in (home / "local.log").read_text(errors="replace"),
        timeout,
        f"the runtime to stop mapping {uuid}",
    )


ORDER = {"userId": "U123", "itemName": "Laptop", "quantity": 1, "status": "new", "timestamp": "2025-05-03T12:00:00Z"}
