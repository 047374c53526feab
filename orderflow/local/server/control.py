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
from typing import Any

from orderflow.errors import Conflict, EndpointError, FileProblem, PortInUse
from orderflow.local.server.embedded import LOOPBACK, _require_moto
from orderflow.local.server.state import (
    LocalServer,
    is_ours,
    is_stopped,
    log_file,
    pid_file,
    recorded_server,
    why_not_ours,
)
from orderflow.paths import open_private_append, private_dir, state_dir

DEFAULT_PORT = 4599
START_TIMEOUT_SECONDS = 30.0
# What the daemon keeps of the caller's environment: enough to run Python and find orderflow, nothing else. It needs
# no credentials (its clients use dummy keys), so none of the caller's — nor anything else they set — can reach it
# or, through /proc/<pid>/environ, the functions it runs.
KEPT_VARIABLES = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "PYTHONPATH", "ORDERFLOW_LOCAL_POLLERS")


def daemon_environment(caller: dict[str, str]) -> dict[str, str]:
    env = {name: caller[name] for name in KEPT_VARIABLES if name in caller}
    return env | {
        "ORDERFLOW_HOME": str(state_dir().resolve()),
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }


@dataclass
class LocalStatus:
    running: bool
    server: LocalServer | None
    note: str = ""

    def to_document(self) -> dict[str, Any]:
        """`ok` is whether it runs (`local status` exits 1 when it does not: `ok` says the same)."""
        server = self.server if self.running else None
        return {
            "ok": self.running,
            **({} if self.running else {"code": "not-running"}),
            "running": self.running,
            "note": self.note,
            "endpoint": server.endpoint if server else None,
            "pid": server.pid if server else None,
            "log": str(log_file()),
            "time_scale": server.time_scale if server else None,
            "realistic": server.realistic if server else None,
            "state": server.state if server else None,
        }


def _check_port_free(port: int) -> None:
    """Bind as the server will (SO_REUSEADDR, like werkzeug): a port whose last connections linger in TIME_WAIT
    after `local stop` is free to use; one another program listens on is not."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((LOOPBACK, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise PortInUse(
                    f"Port {port} on {LOOPBACK} is already in use by another program: "
                    "choose another with `orderflow local start --port N`"
                ) from e
            raise EndpointError(f"Cannot listen on {LOOPBACK}:{port}: {e.strerror}") from e


def _check_state_writable() -> None:
    """The daemon records itself in the pid file once it listens: find out now, in one line, if it could not."""
    folder = private_dir(state_dir())
    for path in (pid_file(), log_file()):
        if path.exists() and not path.is_file():
            raise FileProblem(f"{path} is not a file (a directory?): remove it, or point ORDERFLOW_HOME elsewhere")
    if not os.access(folder, os.W_OK):
        raise FileProblem(f"Cannot write to {folder}: point ORDERFLOW_HOME at a folder you may write to")


def _log_tail(lines: int = 5) -> str:
    try:
        return " | ".join(log_file().read_text(errors="replace").strip().splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


def start(
    port: int = DEFAULT_PORT,
    time_scale: float = 1.0,
    realistic: bool = False,
    fresh: bool = False,
    account_concurrency: int = 1000,
) -> LocalStatus:
    """Start the background server and wait until it answers. Refuses a second one and a busy port."""
    note = ""
    existing = recorded_server()
    if existing is not None:
        if is_ours(existing):
            raise Conflict(
                f"An embedded AWS is already running at {existing.endpoint} (pid {existing.pid}); "
                "stop it first with `orderflow local stop`"
            )
        pid_file().unlink(missing_ok=True)
        note = f"removed a stale pid file ({why_not_ours(existing)})"
    _require_moto()
    _check_state_writable()
    _check_port_free(port)
    with open_private_append(log_file()) as log:
        process = subprocess.Popen(
            daemon_command(port, time_scale, realistic, fresh, account_concurrency),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=daemon_environment(dict(os.environ)),
        )
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise EndpointError(f"The embedded AWS exited at start (status {process.returncode}): {_log_tail()}")
        server = recorded_server()
        if server is not None and server.pid == process.pid and _answers(server.port):
            return LocalStatus(True, server, note)
        time.sleep(0.05)
    process.kill()
    raise EndpointError(f"The embedded AWS did not answer within {START_TIMEOUT_SECONDS:.0f}s: {_log_tail()}")


def daemon_command(
    port: int, time_scale: float, realistic: bool, fresh: bool, account_concurrency: int = 1000
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "orderflow.local.daemon",
        "--port",
        str(port),
        "--time-scale",
        repr(time_scale),
        *(["--realistic"] if realistic else []),
        *(["--fresh"] if fresh else []),
        "--account-concurrency",
        str(account_concurrency),
    ]


def _answers(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), timeout=0.5):
        return True
    return False


def stop(timeout: float = 10.0) -> LocalStatus:
    server = recorded_server()
    if server is None:
        return LocalStatus(False, None, "no embedded AWS was running")
    if server.pid <= 1:
        raise Conflict(f"Refusing to signal anything: {why_not_ours(server)}; delete the file")
    if not is_ours(server):
        pid_file().unlink(missing_ok=True)
        return LocalStatus(
            False, server, f"no embedded AWS was running; removed a stale pid file ({why_not_ours(server)})"
        )
    os.kill(server.pid, signal.SIGTERM)
    if is_stopped(server):
        os.kill(server.pid, signal.SIGCONT)  # a suspended daemon cannot act on SIGTERM until it runs again
    deadline = time.monotonic() + timeout
    while is_ours(server) and time.monotonic() < deadline:
        time.sleep(0.05)
    if is_ours(server):
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.pid, signal.SIGKILL)
    pid_file().unlink(missing_ok=True)
    return LocalStatus(False, server, f"stopped the embedded AWS at {server.endpoint} (pid {server.pid})")


def status() -> LocalStatus:
    server = recorded_server()
    if server is None:
        return LocalStatus(False, None, "not running")
    if not is_ours(server):
        return LocalStatus(False, server, f"not running (stale pid file: {why_not_ours(server)})")
    return LocalStatus(True, server, "running")
