"""One warm execution environment: a separate Python process running the deployed code, one invocation at a time.

The process speaks the Lambda Runtime API (runtime_api.py) with AWS's runtime client or orderflow's stand-in
(launch.py). The module-level code of the handler runs once per process (a cold start: its Init Duration is the time
until the runtime first asks for work); later invocations reuse it (warm). A handler that overruns the function
timeout, or its memory, is killed with its process; the next invocation starts a new one. What the process prints
between receiving an invocation and answering it is that invocation's output: everything it wrote before its answer
is in the pipe by the time the answer arrives, so nothing is lost or misattributed.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import secrets
import select
import signal
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from orderflow.local.runtime.credentials import RoleCredentials
from orderflow.local.runtime.environment.isolation import isolation
from orderflow.local.runtime.environment.launch import Launch
from orderflow.local.runtime.environment.runtime_api import Invocation as NextInvocation
from orderflow.local.runtime.environment.runtime_api import Report, RuntimeApi

# Lambda gives a function's initialisation (module import) its own 10 s, apart from the function timeout.
INIT_TIMEOUT_SECONDS = 10.0
# How often a running process's memory is compared with the function's MemorySize.
MEMORY_CHECK_SECONDS = 0.05


def memory_mb(pid: int, field: str = "VmRSS") -> float | None:
    """A process's memory from Linux's /proc: VmRSS resident now, VmHWM its peak; None where it cannot be read."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def _children(pid: int) -> list[int]:
    try:
        with open(f"/proc/{pid}/task/{pid}/children") as listed:
            return [int(child) for child in listed.read().split()]
    except (OSError, ValueError):
        try:
            import psutil

            return [child.pid for child in psutil.Process(pid).children()]
        except Exception:  # noqa: BLE001 - a process that is gone has no children
            return []


def tree_memory_mb(pid: int, include_root: bool = True) -> float | None:
    """The resident memory of a process and every process below it: what a function's environment uses, counted
    whole as Lambda counts it (a child's allocation is the function's). None where nothing can be read."""
    total, seen, pending = None, set(), [pid]
    while pending:
        current = pending.pop()
        if current in seen:
            continue
        seen.add(current)
        pending += _children(current)
        if current == pid and not include_root:
            continue
        used = memory_mb(current)
        if used is not None:
            total = (total or 0.0) + used
    return total


def exit_reason(returncode: int) -> str:
    """Why a process ended, in the words Lambda's logs use ("signal: killed", "exit status 1")."""
    if returncode < 0:
        try:
            return f"signal: {signal.strsignal(-returncode).lower()}"
        except (ValueError, AttributeError):
            return f"signal: {-returncode}"
    return f"exit status {returncode}"


@dataclass(frozen=True)
class FunctionSpec:
    """What a function's execution environment is made of: read from the Lambda API plus the deployed code."""

    name: str
    arn: str
    region: str
    handler: str
    runtime: str
    timeout: int
    memory_size: int
    variables: dict[str, str]
    code_sha256: str
    code_dir: Path
    log_group: str
    role: str = ""
    # Not part of the execution environment: a new reservation keeps the warm processes.
    reserved_concurrency: int | None = field(default=None, compare=False)


@dataclass
class Invocation:
    request_id: str
    succeeded: bool
    payload: Any = None
    error: dict[str, Any] | None = None
    timed_out: bool = False
    duration_ms: float = 0.0
    init_ms: float | None = None
    max_memory_mb: int | None = None
    output: list[tuple[int, str]] = field(default_factory=list)  # (epoch ms, line)


def peak_memory_mb(pid: int) -> int | None:
    """A process's peak resident memory, REPORT's "Max Memory Used": VmHWM on Linux (its own program's, since exec),
    the resident size now elsewhere."""
    peak = memory_mb(pid, "VmHWM")
    if peak is None:
        try:
            import psutil

            peak = psutil.Process(pid).memory_info().rss / (1024 * 1024)
        except Exception:  # noqa: BLE001 - a process that is gone has no memory to report
            return None
    return int(peak)


def trace_id() -> str:
    """An X-Ray trace header in Lambda's form (Root, Parent, Sampled), for Lambda-Runtime-Trace-Id."""
    root = f"1-{int(time.time()):08x}-{secrets.token_hex(12)}"
    return f"Root={root};Parent={secrets.token_hex(8)};Sampled=0"


def new_log_stream_name() -> str:
    return f"{datetime.now(timezone.utc):%Y/%m/%d}/[$LATEST]{secrets.token_hex(16)}"


def function_environment(
    spec: FunctionSpec, endpoint: str, log_stream: str, credentials: RoleCredentials
) -> dict[str, str]:
    """The variables Lambda sets, the function's own, and its execution role's credentials.

    Nothing is inherited from the runtime's own environment: the caller's credentials never reach the function.
    """
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "LANG": "en_US.UTF-8",
        "TZ": ":UTC",
        "HOME": str(spec.code_dir.parent),
        "LAMBDA_TASK_ROOT": str(spec.code_dir),
        "_HANDLER": spec.handler,
        "AWS_EXECUTION_ENV": f"AWS_Lambda_{spec.runtime}",
        "AWS_REGION": spec.region,
        "AWS_DEFAULT_REGION": spec.region,
        "AWS_LAMBDA_FUNCTION_NAME": spec.name,
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(spec.memory_size),
        "AWS_LAMBDA_LOG_GROUP_NAME": spec.log_group,
        "AWS_LAMBDA_LOG_STREAM_NAME": log_stream,
        **credentials.environment(),
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    # The function's own variables, except the ones Lambda reserves.
    env.update({k: v for k, v in spec.variables.items() if k not in env or k in ("LANG", "TZ", "PATH")})
    return env


class WorkerProcess:
    def __init__(self, spec: FunctionSpec, endpoint: str, credentials: RoleCredentials, launch: Launch) -> None:
        self.spec = spec
        self.credentials = credentials
        self.launch = launch
        self.log_stream = new_log_stream_name()
        self.invocations = 0
        self.api = RuntimeApi()
        self._spawned = time.monotonic()
        try:
            self.fence = isolation(launch.needs)
            self._process = subprocess.Popen(
                self.fence.command(launch.command(spec.handler), spec.code_dir),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env={
                    **function_environment(spec, endpoint, self.log_stream, credentials),
                    "AWS_LAMBDA_RUNTIME_API": self.api.address,
                    **launch.environment(spec.code_dir),
                },
                cwd=spec.code_dir,
                # A signal to the runtime's terminal never reaches the function; the group ends with the environment
                # (fenced, the function is PID 1 of its own namespace: every process it starts ends with it).
                start_new_session=True,
            )
        except BaseException:
            self.api.close()
            raise
        assert self._process.stdout is not None
        self._stdout = self._process.stdout.fileno()
        os.set_blocking(self._stdout, False)
        self._stdout_open = True
        self._partial = b""
        self._lines: list[tuple[int, str]] = []
        self._ready = False
        self._init_ms: float | None = None
        self._init_error: dict[str, Any] | None = None
        self._killed_for_memory = False
        self._peak_mb = 0.0
        self._runtime_pid: int | None = None

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    @property
    def pid(self) -> int:
        return self._process.pid

    def _read_output(self, timeout: float) -> None:
        """Wait up to `timeout` for output or a report; take in whatever output is there."""
        if self.api.closed:
            return
        watched = [self.api.wake_fd, *([self._stdout] if self._stdout_open else [])]
        try:
            ready, _, _ = select.select(watched, [], [], max(0.0, timeout))
        except (OSError, ValueError):
            return
        if self.api.wake_fd in ready:
            with contextlib.suppress(OSError):
                os.read(self.api.wake_fd, 4096)
        while self._stdout_open:
            try:
                chunk = os.read(self._stdout, 65536)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self._stdout_open = False
                break
            now_ms = int(time.time() * 1000)
            *complete, self._partial = (self._partial + chunk).split(b"\n")
            self._lines += [(now_ms, line.decode("utf-8", "replace")) for line in complete]

    def _take_output(self) -> list[tuple[int, str]]:
        """Everything printed so far: what is in the pipe now is read first."""
        self._read_output(0.0)
        if not self._stdout_open and self._partial:
            self._lines.append((int(time.time() * 1000), self._partial.decode("utf-8", "replace")))
            self._partial = b""
        lines, self._lines = self._lines, []
        return lines

    def _wait(self, deadline: float, wanted: Callable[[Report], bool]) -> Report | None:
        """The first report `wanted` accepts; None when the deadline passes or the process dies or outgrows its
        memory first. The function's output is read meanwhile (a pipe left full would block it)."""
        next_memory_check = 0.0
        while True:
            with contextlib.suppress(queue.Empty):
                while True:
                    report = self.api.reports.get_nowait()
                    if wanted(report):
                        return report
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                return None
            # Every MEMORY_CHECK_SECONDS, not on every line the function prints (each wakes this loop).
            if now >= next_memory_check:
                next_memory_check = now + MEMORY_CHECK_SECONDS
                if self._exceeds_memory(self.memory_now()):
                    return None
            if not self._stdout_open and not self.alive and self.api.reports.empty():
                return None
            self._read_output(min(remaining, MEMORY_CHECK_SECONDS))

    def memory_now(self) -> float | None:
        """The environment's memory: the function's process and its children (fenced, `unshare` itself is not the
        function's and is left out)."""
        used = tree_memory_mb(self.pid, include_root=not self.fence.fenced)
        if used is not None:
            self._peak_mb = max(self._peak_mb, used)
        return used

    def peak_memory(self) -> int | None:
        """REPORT's "Max Memory Used": the runtime's own peak (VmHWM) or the whole tree's highest seen (each wait
        checks the tree at its start, so every invocation is seen at least once)."""
        if self._runtime_pid is None:
            # Fenced, the runtime is `unshare`'s one child (the function's PID 1); it stays the same for good.
            self._runtime_pid = next(iter(_children(self.pid)), None) if self.fence.fenced else self.pid
        own = peak_memory_mb(self._runtime_pid) if self._runtime_pid is not None else None
        return max(own or 0, int(self._peak_mb)) or None

    def _exceeds_memory(self, used_mb: float | None) -> bool:
        """Lambda's limit: a process above its MemorySize is killed by the kernel, mid-work, without warning."""
        if used_mb is None or used_mb <= self.spec.memory_size:
            return False
        self._killed_for_memory = True
        self.kill()
        return True

    def _wait_for_init(self) -> bool:
        """Cold start: the handler module loads before the first request, under Lambda's own init limit. Ready when
        the runtime first asks for work; an init error it reports is kept for the invocation to return."""
        if self._ready or self._init_error is not None:
            return True
        report = self._wait(self._spawned + INIT_TIMEOUT_SECONDS, lambda r: r.kind in ("next", "init-error"))
        if report is None:
            return False
        self._init_ms = (time.monotonic() - self._spawned) * 1000
        if report.kind == "init-error":
            self._init_error = _error_document(report)
        else:
            self._ready = True
        return True

    def _failure(self, request_id: str, started: float, cold: bool) -> Invocation:
        """The process timed out (and is killed now), went over its memory, or died on its own."""
        timed_out = self.alive
        self.kill()
        if timed_out:
            message = f"Task timed out after {self.spec.timeout:.2f} seconds"
            error = {"errorType": "Sandbox.Timedout", "errorMessage": message}
        else:
            reason = exit_reason(self._process.returncode)
            message = f"RequestId: {request_id} Error: Runtime exited with error: {reason}"
            error = {"errorType": "Runtime.ExitError", "errorMessage": message}
        return Invocation(
            request_id,
            False,
            error=error,
            timed_out=timed_out,
            duration_ms=(time.monotonic() - started) * 1000,
            init_ms=self._init_ms if cold else None,
            # What Lambda reports for a process it killed at the limit: all of its memory.
            max_memory_mb=self.spec.memory_size if self._killed_for_memory else None,
            output=self._take_output(),
        )

    def invoke(self, event: dict[str, Any], request_id: str) -> Invocation:
        self.invocations += 1
        cold = self.invocations == 1
        if not self._wait_for_init():
            return self._failure(request_id, time.monotonic(), cold)
        if self._init_error is not None:  # the runtime exits after reporting it: the next invocation starts anew
            return Invocation(
                request_id, False, error=self._init_error, init_ms=self._init_ms, output=self._take_output()
            )
        started = time.monotonic()
        deadline_ms = int(time.time() * 1000 + self.spec.timeout * 1000)
        body = json.dumps(event).encode()
        self.api.offer(NextInvocation(request_id, body, deadline_ms, self.spec.arn, trace_id()))
        answered = self._wait(
            started + self.spec.timeout, lambda r: r.kind in ("response", "error") and r.request_id == request_id
        )
        duration_ms = (time.monotonic() - started) * 1000
        # A peak above the limit between two checks is fatal all the same.
        peak = self.peak_memory()
        if answered is None or self._exceeds_memory(peak):
            return self._failure(request_id, started, cold)
        output = self._take_output()
        init_ms = self._init_ms if cold else None
        if answered.kind == "response":
            return Invocation(request_id, True, answered.document(), None, False, duration_ms, init_ms, peak, output)
        error = _error_document(answered)
        return Invocation(request_id, False, None, error, False, duration_ms, init_ms, peak, output)

    def kill(self) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, 9)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=5)

    def close(self) -> None:
        """Shut the environment down (Lambda freezes and later discards it; nothing runs after its last answer)."""
        self.kill()
        self.api.close()
        with contextlib.suppress(OSError):
            if self._process.stdout:
                self._process.stdout.close()


def _error_document(report: Report) -> dict[str, Any]:
    """The error document the runtime posted, or one made of its error-type header when the body is not one."""
    document = report.document()
    if isinstance(document, dict) and "errorType" in document:
        return document
    return {"errorType": report.error_type or "Runtime.Unknown", "errorMessage": report.body.decode("utf-8", "replace")}
