"""One warm execution environment: a separate Python process running the deployed code, one invocation at a time.

The module-level code of the handler runs once per process (a cold start); later invocations reuse it (warm).
A handler that overruns the function timeout is killed with its process; the next invocation starts a new one.
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
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from orderflow.local.runtime.bootstrap import SENTINEL
from orderflow.local.runtime.credentials import RoleCredentials
from orderflow.local.runtime.isolation import isolation

BOOTSTRAP = Path(__file__).resolve().parent / "bootstrap.py"
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
    def __init__(self, spec: FunctionSpec, endpoint: str, credentials: RoleCredentials) -> None:
        self.spec = spec
        self.credentials = credentials
        self.log_stream = new_log_stream_name()
        self.invocations = 0
        read_fd, write_fd = os.pipe()
        try:
            hidden = isolation(Path(tempfile.gettempdir()).resolve())
            self._process = subprocess.Popen(
                hidden.command([sys.executable, "-I", str(BOOTSTRAP), str(spec.code_dir)]),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                env={
                    **function_environment(spec, endpoint, self.log_stream, credentials),
                    "_ORDERFLOW_RESULT_FD": str(write_fd),
                },
                pass_fds=(write_fd,),
                cwd=spec.code_dir,
                start_new_session=True,  # a signal to the runtime's terminal never reaches the function
            )
        finally:
            os.close(write_fd)
        self._results = os.fdopen(read_fd, "rb", buffering=0)
        self._result_buffer = b""
        self._init_ms: float | None = None
        self._killed_for_memory = False
        self._output: queue.Queue[tuple[int, str] | None] = queue.Queue()
        threading.Thread(target=self._pump_output, name=f"{spec.name}-output", daemon=True).start()

    @property
    def alive(self) -> bool:
        return self._process.poll() is None

    @property
    def pid(self) -> int:
        return self._process.pid

    def _pump_output(self) -> None:
        assert self._process.stdout is not None
        for raw in self._process.stdout:
            self._output.put((int(time.time() * 1000), raw.decode("utf-8", "replace").rstrip("\n")))
        self._output.put(None)

    def _read_message(self, deadline: float) -> dict[str, Any] | None:
        """The next line of the result pipe, or None when the deadline passes or the process dies first."""
        while b"\n" not in self._result_buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return None
            ready, _, _ = select.select([self._results], [], [], min(remaining, MEMORY_CHECK_SECONDS))
            if not ready:
                if self._exceeds_memory(memory_mb(self.pid)):
                    return None
                continue
            chunk = os.read(self._results.fileno(), 65536)
            if not chunk:
                return None
            self._result_buffer += chunk
        line, self._result_buffer = self._result_buffer.split(b"\n", 1)
        return json.loads(line)

    def _collect_output(self, request_id: str, until: float) -> list[tuple[int, str]]:
        """Everything printed during the invocation, up to its sentinel (or until the pipe closes)."""
        lines: list[tuple[int, str]] = []
        while True:
            try:
                item = self._output.get(timeout=max(0.0, until - time.monotonic()))
            except queue.Empty:
                return lines
            if item is None:
                return lines
            if item[1] == f"{SENTINEL}{request_id}":
                return lines
            lines.append(item)

    def _exceeds_memory(self, used_mb: float | None) -> bool:
        """Lambda's limit: a process above its MemorySize is killed by the kernel, mid-work, without warning."""
        if used_mb is None or used_mb <= self.spec.memory_size:
            return False
        self._killed_for_memory = True
        self.kill()
        return True

    def _wait_for_init(self) -> bool:
        """Cold start: the handler module loads before the first request, under Lambda's own init limit."""
        if self._init_ms is not None:
            return True
        announced = self._read_message(time.monotonic() + INIT_TIMEOUT_SECONDS)
        if announced is None:
            return False
        self._init_ms = announced["initMs"]
        return True

    def _failure(self, request_id: str, started: float, cold: bool) -> Invocation:
        """The process timed out (and is killed now), went over its memory, or died on its own."""
        timed_out = self.alive
        self.kill()
        output = self._collect_output(request_id, time.monotonic() + 1.0)
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
            output=output,
        )

    def invoke(self, event: dict[str, Any], request_id: str) -> Invocation:
        self.invocations += 1
        cold = self.invocations == 1
        if not self._wait_for_init():
            return self._failure(request_id, time.monotonic(), cold)
        started = time.monotonic()
        request = {
            "requestId": request_id,
            "event": event,
            "deadlineMs": int(time.time() * 1000 + self.spec.timeout * 1000),
            "invokedFunctionArn": self.spec.arn,
        }
        try:
            assert self._process.stdin is not None
            self._process.stdin.write((json.dumps(request) + "\n").encode())
            self._process.stdin.flush()
        except (BrokenPipeError, OSError):
            return self._failure(request_id, started, cold)
        result = self._read_message(started + self.spec.timeout)
        # A peak above the limit between two checks (VmHWM, reported with the result) is fatal all the same.
        if result is None or self._exceeds_memory(result.get("maxMemoryMb")):
            return self._failure(request_id, started, cold)
        return Invocation(
            request_id,
            bool(result.get("ok")),
            payload=result.get("payload"),
            error=result.get("error"),
            duration_ms=(time.monotonic() - started) * 1000,
            init_ms=self._init_ms if cold else None,
            max_memory_mb=result.get("maxMemoryMb"),
            output=self._collect_output(request_id, time.monotonic() + 5.0),
        )

    def kill(self) -> None:
        if self.alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self._process.pid, 9)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=5)
        with contextlib.suppress(OSError):
            if self._process.stdin:
                self._process.stdin.close()

    def close(self) -> None:
        """Shut down gracefully: closing stdin ends the bootstrap's request loop."""
        with contextlib.suppress(OSError):
            if self._process.stdin:
                self._process.stdin.close()
        try:
            self._process.wait(timeout=2)
        except subprocess.TimeoutExpired:
            self.kill()
        with contextlib.suppress(OSError):
            self._results.close()
