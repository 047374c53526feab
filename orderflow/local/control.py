"""`orderflow local start | stop | status`: the embedded AWS as a background process of the current user."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass

from orderflow.errors import OrderflowError
from orderflow.local.server import LOOPBACK, _require_moto
from orderflow.local.state import LocalServer, log_file, pid_file, process_alive, recorded_server

DEFAULT_PORT = 4599
START_TIMEOUT_SECONDS = 30.0


@dataclass
class LocalStatus:
    running: bool
    server: LocalServer | None
    note: str = ""


def _check_port_free(port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((LOOPBACK, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise OrderflowError(
                    f"Port {port} on {LOOPBACK} is already in use by another program: "
                    "choose another with `orderflow local start --port N`"
                ) from e
            raise OrderflowError(f"Cannot listen on {LOOPBACK}:{port}: {e.strerror}") from e


def _log_tail(lines: int = 5) -> str:
    try:
        return " | ".join(log_file().read_text(errors="replace").strip().splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def start(port: int = DEFAULT_PORT) -> LocalStatus:
    """Start the background server and wait until it answers. Refuses a second one and a busy port."""
    note = ""
    existing = recorded_server()
    if existing is not None:
        if process_alive(existing.pid):
            raise OrderflowError(
                f"An embedded AWS is already running at {existing.endpoint} (pid {existing.pid}); "
                "stop it first with `orderflow local stop`"
            )
        pid_file().unlink(missing_ok=True)
        note = f"removed a stale pid file (pid {existing.pid} was no longer running)"
    _require_moto()
    _check_port_free(port)
    log_file().parent.mkdir(parents=True, exist_ok=True)
    with open(log_file(), "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "orderflow.local.daemon", "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise OrderflowError(f"The embedded AWS exited at start (status {process.returncode}): {_log_tail()}")
        server = recorded_server()
        if server is not None and server.pid == process.pid and _answers(server.port):
            return LocalStatus(True, server, note)
        time.sleep(0.05)
    process.kill()
    raise OrderflowError(f"The embedded AWS did not answer within {START_TIMEOUT_SECONDS:.0f}s: {_log_tail()}")


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=0.5):
        return True
    return False


def stop(timeout: float = 10.0) -> LocalStatus:
    server = recorded_server()
    if server is None:
        return LocalStatus(False, None, "no embedded AWS was running")
    if not process_alive(server.pid):
        pid_file().unlink(missing_ok=True)
        return LocalStatus(False, server, f"removed a stale pid file (pid {server.pid} was no longer running)")
    os.kill(server.pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while process_alive(server.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if process_alive(server.pid):
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.pid, signal.SIGKILL)
    pid_file().unlink(missing_ok=True)
    return LocalStatus(False, server, f"stopped the embedded AWS at {server.endpoint} (pid {server.pid})")


def status() -> LocalStatus:
    server = recorded_server()
    if server is None:
        return LocalStatus(False, None, "not running")
    if not process_alive(server.pid):
        return LocalStatus(False, server, f"not running (stale pid file: pid {server.pid} is gone)")
    return LocalStatus(True, server, "running")
