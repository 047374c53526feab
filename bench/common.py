"""Shared benchmark plumbing: an embedded AWS that counts API calls, timing, and plain-text tables."""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from orderflow.aws import Aws, connect  # noqa: E402
from orderflow.local.runtime.environment.worker import memory_mb  # noqa: E402
from orderflow.local.server.embedded import EmbeddedAws  # noqa: E402
from orderflow.local.server.state import LOCAL_CREDENTIALS  # noqa: E402
from orderflow.local.server.wire import is_read, operation_of  # noqa: E402
from orderflow.provision import operations  # noqa: E402
from orderflow.provision.base import Context  # noqa: E402
from orderflow.stack import StackConfig, StackSettings  # noqa: E402

DUMMY_ENV = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_EC2_METADATA_DISABLED": "true"}


class ApiCounter:
    """WSGI middleware counting the calls that reach the embedded AWS: the same yardstick for every client."""

    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self._lock = threading.Lock()
        self.app: Any = None

    def wrap(self, app: Any) -> ApiCounter:
        self.app = app
        return self

    def __call__(self, environ, start_response):
        operation = operation_of(environ)
        if operation:
            with self._lock:
                self.calls[operation] += 1
        return self.app(environ, start_response)

    def snapshot(self) -> Counter[str]:
        with self._lock:
            return Counter(self.calls)


def thread_cpu_seconds(*names: str) -> float:
    """CPU seconds the named threads of this process have used so far (measured from outside the product: the
    kernel's per-thread counters, by the threads' names)."""
    import psutil

    ids = {t.native_id for t in threading.enumerate() if t.name in names}
    return sum(t.user_time + t.system_time for t in psutil.Process().threads() if t.id in ids)


def cold_starts(aws: Aws, log_group: str) -> int:
    """REPORT lines with an Init Duration: Lambda's own record of a cold start."""
    paginator = aws.client("logs").get_paginator("filter_log_events")
    pages = paginator.paginate(logGroupName=log_group, filterPattern='"Init Duration"')
    return sum(len(page.get("events", [])) for page in pages)


def split(calls: Counter[str]) -> tuple[int, int]:
    reads = sum(n for op, n in calls.items() if is_read(op))
    return reads, sum(calls.values()) - reads


def start_embedded(
    runtime: bool = True,
    counter: ApiCounter | None = None,
    http_pollers: bool = False,
    cloudwatch: bool = True,
    state_file: Path | None = None,
) -> EmbeddedAws:
    """An embedded AWS on a free port; with `state_file`, keeping its state as the daemon does (journal, snapshots)."""
    return EmbeddedAws(
        port=0,
        runtime=runtime,
        wrap_app=counter.wrap if counter else None,
        in_process_pollers=not http_pollers,
        cloudwatch=cloudwatch,
        state_file=state_file,
    ).start()


def stacks_on(
    embedded: EmbeddedAws, *names: str, region: str = "us-east-1", settings: StackSettings | None = None
) -> tuple[Aws, list[StackConfig]]:
    """A client session on the embedded AWS and the named stacks, converged (`orderflow up`, in-process)."""
    aws = connect(region, endpoint_url=embedded.endpoint, credentials=LOCAL_CREDENTIALS)
    configs = [StackConfig(name, settings or StackSettings()) for name in names]
    for config in configs:
        operations.converge(Context(aws=aws, config=config))
    return aws, configs


def depth(aws: Aws, name: str) -> int:
    """Messages in a queue, visible and in flight."""
    sqs = aws.client("sqs")
    attributes = sqs.get_queue_attributes(
        QueueUrl=sqs.get_queue_url(QueueName=name)["QueueUrl"],
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attributes.values())


def function_processes_rss_mb(embedded: EmbeddedAws) -> tuple[int, float]:
    """How many warm function processes the runtime holds, and their peak RSS added up."""
    pids = embedded.runtime.host.worker_pids()
    return len(pids), sum(peak_rss_mb(pid) for pid in pids)


def run(cmd: list[str], env: dict[str, str] | None = None, check: bool = True) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(cmd, env={**os.environ, **DUMMY_ENV, **(env or {})}, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if check and result.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return elapsed, result.stdout


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))]


def median(values: list[float]) -> float:
    return statistics.median(values)


def table(headers: list[str], rows: list[list[Any]]) -> str:
    cells = [[str(h) for h in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a live process, in MB."""
    return memory_mb(pid, "VmHWM") or 0.0


def restricted_session(embedded: EmbeddedAws, aws: Aws, name: str, policy: dict) -> Aws:
    """A session signed by a new IAM user of the embedded AWS holding exactly `policy`: every call it makes is
    evaluated by the embedded AWS's enforcement, as a deployer's or a publisher's would be on AWS."""
    import json

    iam = aws.client("iam")
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="bench", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    keys = {"aws_access_key_id": key["AccessKeyId"], "aws_secret_access_key": key["SecretAccessKey"]}
    return connect(aws.region, endpoint_url=embedded.endpoint, credentials=keys)
