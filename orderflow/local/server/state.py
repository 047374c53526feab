"""Where a background embedded AWS records itself — a per-user state directory with a pid file and a log file — and
the proof that a recorded pid is still that embedded AWS before anything signals it.

A pid alone proves nothing: after a crash or a reboot the number can belong to any program (or be 0, or -1, which
`kill` reads as "my process group" and "every process I may signal"). The pid file therefore records the process's
start time and command line, and a process is ours only if all three still match.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psutil

from orderflow.errors import BadInput, NotRunningError
from orderflow.paths import state_dir, write_private

# Any key works against the embedded AWS; fixed dummy values keep real credentials out of it entirely.
LOCAL_CREDENTIALS = {"aws_access_key_id": "orderflow-local", "aws_secret_access_key": "orderflow-local"}
LOCAL_REGION = "us-east-1"
DAEMON_MODULE = "orderflow.local.daemon"


def state_file() -> Path:
    """Where the background embedded AWS keeps its state between runs (`local start --fresh` discards it)."""
    return state_dir() / "embedded-aws.state"


def pid_file() -> Path:
    return state_dir() / "local.json"


def log_file() -> Path:
    return state_dir() / "local.log"


@dataclass
class LocalServer:
    pid: int
    endpoint: str
    port: int
    started_at: float = 0.0  # the process's start time (seconds since the epoch, as the kernel reports it)
    command: list[str] = field(default_factory=list)
    # AWS's durations times this (CloudWatch's minute; with `realistic`, the control plane's delays too).
    time_scale: float = 1.0
    # `--realistic`: AWS's control plane with its delays and states; else moto's instant one.
    realistic: bool = False
    # Where its state came from: "restored …" or "started empty …" (and when, if empty: 0 when restored).
    state: str = ""
    empty_since: float = 0.0

    @classmethod
    def of_this_process(
        cls, endpoint: str, port: int, time_scale: float = 1.0, realistic: bool = False, restored: Any = None,
        fresh: bool = False,
    ) -> LocalServer:  # fmt: skip
        me = psutil.Process()
        state, empty_since = _state_of(restored, fresh, me.create_time())
        return cls(
            os.getpid(), endpoint, port, me.create_time(), me.cmdline(), time_scale, realistic, state, empty_since
        )

    def empty_hint(self) -> str | None:
        """For a command that found nothing: the embedded AWS started empty, when, and what to run."""
        if not self.empty_since:
            return None
        at = time.strftime("%H:%M", time.localtime(self.empty_since))
        started = self.state.replace("started empty", f"started empty at {at}", 1)
        return f"the embedded AWS {started}: run `orderflow --local up`"

    @property
    def delay_scale(self) -> float:
        """How this server's control-plane delays compare to AWS's: its time scale, or 0 when instant."""
        return self.time_scale if self.realistic else 0.0

    def save(self) -> None:
        write_private(pid_file(), json.dumps(asdict(self)))


def _state_of(restored: Any, fresh: bool, started: float) -> tuple[str, float]:
    if fresh:
        return "started empty (--fresh)", started
    if restored is not None and restored.taken:
        return f"restored the state saved at {time.strftime('%H:%M:%S', time.localtime(restored.taken))}", 0.0
    if restored is not None and restored.set_aside:
        return f"started empty (the last snapshot was set aside: {restored.set_aside})", started
    return "started empty (no saved state)", started


def is_ours(server: LocalServer) -> bool:
    """Is the recorded process still running, and still the embedded AWS that wrote the record?"""
    if server.pid <= 1:
        return False
    try:
        process = psutil.Process(server.pid)
        alive = process.status() != psutil.STATUS_ZOMBIE
        same = abs(process.create_time() - server.started_at) < 0.01 and process.cmdline() == server.command
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return alive and same and DAEMON_MODULE in server.command


def is_stopped(server: LocalServer) -> bool:
    """Suspended (SIGSTOP, Ctrl-Z): it holds its port but answers nothing."""
    try:
        return psutil.Process(server.pid).status() == psutil.STATUS_STOPPED
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def recorded_server() -> LocalServer | None:
    """The server the pid file names, whether or not it still runs; None when there is no readable record."""
    try:
        data = json.loads(pid_file().read_text())
        return LocalServer(
            pid=int(data["pid"]),
            endpoint=str(data["endpoint"]),
            port=int(data["port"]),
            started_at=float(data.get("started_at", 0.0)),
            command=[str(c) for c in data.get("command", [])],
            time_scale=float(data.get("time_scale") or 1.0),
            realistic=bool(data.get("realistic", False)),
            state=str(data.get("state", "")),
            empty_since=float(data.get("empty_since") or 0.0),
        )
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError, ValueError, KeyError, TypeError):
        return None


def why_not_ours(server: LocalServer) -> str:
    """One line on a record that does not prove a live embedded AWS."""
    if server.pid <= 1:
        return f"the pid file {pid_file()} names pid {server.pid}, which no embedded AWS can have"
    if psutil.pid_exists(server.pid):
        return f"pid {server.pid} in {pid_file()} now belongs to another program (left alone)"
    return f"pid {server.pid} in {pid_file()} is no longer running"


def local_region(region: str | None) -> str:
    """The region to use on the embedded AWS. moto serves the regions botocore knows and answers any other with an
    HTML "500 Internal Server Error"; refuse those here, in one line."""
    import boto3

    chosen = region or LOCAL_REGION
    session = boto3.Session()
    known = {
        r for partition in session.get_available_partitions() for r in session.get_available_regions("sqs", partition)
    }
    if chosen not in known:
        raise BadInput(
            f"Region {chosen!r} is not an AWS region the embedded AWS serves: use one such as {LOCAL_REGION}"
        )
    return chosen


def running_endpoint() -> str:
    """The endpoint of the running embedded AWS, or a one-line explanation of why there is none."""
    server = recorded_server()
    if server is None:
        raise NotRunningError("No embedded AWS is running: start one with `orderflow local start`")
    if not is_ours(server):
        raise NotRunningError(f"No embedded AWS is running ({why_not_ours(server)}): run `orderflow local start`")
    if is_stopped(server):
        raise NotRunningError(
            f"The embedded AWS at {server.endpoint} is not answering: its process {server.pid} is stopped "
            "(resume it with `kill -CONT`, or `orderflow local stop` and start it again)"
        )
    return server.endpoint
