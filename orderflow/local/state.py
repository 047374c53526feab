"""Where a background embedded AWS records itself: a per-user state directory with a pid file and a log file."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from orderflow.errors import OrderflowError
from orderflow.paths import state_dir

# Any key works against the embedded AWS; fixed dummy values keep real credentials out of it entirely.
LOCAL_CREDENTIALS = {"aws_access_key_id": "orderflow-local", "aws_secret_access_key": "orderflow-local"}
LOCAL_REGION = "us-east-1"


def pid_file() -> Path:
    return state_dir() / "local.json"


def log_file() -> Path:
    return state_dir() / "local.log"


@dataclass
class LocalServer:
    pid: int
    endpoint: str
    port: int

    def save(self) -> None:
        pid_file().parent.mkdir(parents=True, exist_ok=True)
        pid_file().write_text(json.dumps(asdict(self)))


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recorded_server() -> LocalServer | None:
    """The server the pid file names, whether or not it still runs."""
    try:
        data = json.loads(pid_file().read_text())
        return LocalServer(pid=int(data["pid"]), endpoint=str(data["endpoint"]), port=int(data["port"]))
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None


def running_endpoint() -> str:
    """The endpoint of the running embedded AWS, or a one-line explanation of why there is none."""
    server = recorded_server()
    if server is None:
        raise OrderflowError("No embedded AWS is running: start one with `orderflow local start`")
    if not process_alive(server.pid):
        raise OrderflowError(
            f"The embedded AWS recorded in {pid_file()} (pid {server.pid}) is no longer running: "
            "run `orderflow local start` again"
        )
    return server.endpoint
