"""The background embedded AWS under a user's mishaps: stale and strangers' pids, the caller's secrets, kill -9,
SIGSTOP, a port just freed, down/up cycles on one daemon. Each case starts a daemon of its own.

`ORDERFLOW_DAEMON_CYCLES=20 pytest -s tests/e2e/test_daemon.py | grep DAEMON` prints the figures recorded in
docs/reliability.md.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from tests.e2e.conftest import Aws, Cli, free_port, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def daemon(tmp_path):
    """A Cli with its own state folder and the embedded AWS it started; stopped afterwards."""
    cli = Cli(
        tmp_path / "home", env={"ORDERFLOW_CALLER_SECRET": "caller-secret", "AWS_SECRET_ACCESS_KEY": "real-secret"}
    )
    started = json.loads(cli("--json", "local", "start", "--port", str(free_port())).stdout)
    yield cli, started, tmp_path / "home"
    cli("local", "stop", check=False)


def _function_processes(daemon_pid: int, function: str | None = None) -> list[psutil.Process]:
    found = []
    for child in psutil.Process(daemon_pid).children(recursive=True):
        try:
            command, folder = " ".join(child.cmdline()), child.cwd()
        except psutil.NoSuchProcess:
            continue
        # A function process runs a Runtime API client in its deployed code's folder (<function>-<digest>/task).
        client = "awslambdaric" in command or "ric.py" in command
        if client and (function is None or f"/{function}-" in folder):
            found.append(child)
    return found


def test_a_stranger_or_impossible_pid_is_never_signalled(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    cli = Cli(home)
    stranger = subprocess.Popen(["sleep", "60"])
    try:
        (home / "local.json").write_text(json.dumps({"pid": stranger.pid, "endpoint": "http://127.0.0.1:1", "port": 1}))
        assert cli("local", "status", check=False).returncode == 1
        stopped = cli("local", "stop")
        assert "belongs to another program" in stopped.stdout
        assert stranger.poll() is None  # still running: nothing was signalled
        for impossible in (0, -1, 1):
            (home / "local.json").write_text(json.dumps({"pid": impossible, "endpoint": "x", "port": 1}))
            refused = cli("local", "stop", check=False)
            assert refused.returncode == 1 and len(refused.stderr.strip().splitlines()) == 1
            assert f"names pid {impossible}" in refused.stderr
        assert stranger.poll() is None
    finally:
        stranger.kill()


def test_state_files_are_private_to_their_user(daemon):
    _, _, home = daemon
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    for name in ("local.json", "local.log"):
        assert stat.S_IMODE((home / name).stat().st_mode) == 0o600, name


def test_no_process_of_the_daemon_holds_what_the_caller_set(daemon):
    cli, started, _ = daemon
    stack = "env"
    cli("--local", "--stack", stack, "up")
    cli("--local", "--stack", stack, "publish-test")
    assert cli("--local", "--stack", stack, "verify", "--timeout", "30").returncode == 0
    tree = [psutil.Process(started["pid"]), *psutil.Process(started["pid"]).children(recursive=True)]
    assert _function_processes(started["pid"]), "a function process ran"
    for process in tree:
        environment = process.environ()
        assert "ORDERFLOW_CALLER_SECRET" not in environment, process.cmdline()
        assert "real-secret" not in environment.values(), process.cmdline()
    print(f"DAEMON environment: {len(tree)} processes of the daemon's tree, none holds a variable the caller set")


@pytest.mark.slow
def test_a_stopped_daemon_is_reported_at_once_and_stop_still_ends_it(daemon):
    cli, started, _ = daemon
    os.kill(started["pid"], signal.SIGSTOP)
    began = time.monotonic()
    result = cli("--local", "status", check=False, timeout=60)
    took = time.monotonic() - began
    assert result.returncode == 1 and "is not answering" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    cli("local", "stop")
    assert not psutil.pid_exists(started["pid"]) or psutil.Process(started["pid"]).status() == psutil.STATUS_ZOMBIE
    print(f"DAEMON SIGSTOP: reported in {took:.1f}s ('is not answering'); local stop ended it")


@pytest.mark.slow
def test_a_killed_daemons_leftovers_are_swept_and_its_port_is_free_at_once(tmp_path):
    cli = Cli(tmp_path / "home")
    port = free_port()
    started = json.loads(cli("--json", "local", "start", "--port", str(port)).stdout)
    cli("--local", "--stack", "k9", "up")
    cli("--local", "--stack", "k9", "publish-test")
    assert cli("--local", "--stack", "k9", "verify", "--timeout", "30").returncode == 0
    pattern = f"orderflow-lambda-{started['pid']}-*"
    assert list(Path(tempfile.gettempdir()).glob(pattern))
    os.killpg(started["pid"], signal.SIGKILL)  # the daemon and its function processes, as a crash would
    wait_for(lambda: not psutil.pid_exists(started["pid"]), 10, "the daemon to die")
    assert list(Path(tempfile.gettempdir()).glob(pattern)), "kill -9 leaves the work folder behind"
    again = cli("local", "start", "--port", str(port))  # the same port, at once
    try:
        assert "stale pid file" in again.stderr
        wait_for(lambda: not list(Path(tempfile.gettempdir()).glob(pattern)), 10, "the leftovers to be swept")
    finally:
        cli("local", "stop")
    print("DAEMON kill -9: work folder left, swept by the next start; the same port reused at once")


@pytest.mark.slow
def test_down_then_up_on_one_daemon_works_every_time_and_leaves_no_process_behind(daemon):
    cli, started, _ = daemon
    cycles = int(os.environ.get("ORDERFLOW_DAEMON_CYCLES", "2"))
    stack, daemon_pid = "cycle", started["pid"]
    function = f"{stack}-ProcessOrderFunction"
    baseline_rss = psutil.Process(daemon_pid).memory_info().rss / 2**20
    rss, stops = [], []
    for cycle in range(cycles):
        cli("--local", "--stack", stack, "up")
        cli("--local", "--stack", stack, "publish-test")
        verified = cli("--local", "--stack", stack, "verify", "--timeout", "30", check=False)
        assert verified.returncode == 0, (cycle, verified.stdout, verified.stderr)
        assert _function_processes(daemon_pid, function)
        cli("--local", "--stack", stack, "down", "--yes")
        gone_after = time.monotonic()
        wait_for(lambda: not _function_processes(daemon_pid, function), 10, "the deleted function's processes to stop")
        took = time.monotonic() - gone_after
        assert took < 5, f"processes outlived their function by {took:.1f}s"
        stops.append(took)
        rss.append(psutil.Process(daemon_pid).memory_info().rss / 2**20)
    aws = Aws(started["endpoint"])
    assert aws.log_messages(f"/aws/lambda/{function}") == []  # down deleted the group; nothing re-created it
    print(
        f"DAEMON down/up: {cycles} cycles on one daemon, every verify passed; 0 function processes after each down "
        f"(at most {max(stops):.1f}s after it returned); "
        f"daemon RSS {baseline_rss:.0f} MB before, {rss[0]:.0f} MB after the first cycle, "
        f"{rss[-1]:.0f} MB after the last"
    )


def test_a_region_the_embedded_aws_cannot_serve_is_one_line(daemon):
    cli, _, _ = daemon
    result = cli("--local", "--region", "nowhere-1", "status", check=False)
    assert result.returncode == 2  # a value given on the command line: a usage error
    assert result.stderr.strip() == (
        "error: Region 'nowhere-1' is not an AWS region the embedded AWS serves: use one such as us-east-1"
    )
    assert cli("--local", "--region", "eu-west-1", "status").returncode == 0


@pytest.mark.slow
def test_a_killed_daemon_comes_back_with_its_stacks_and_orders_and_fresh_starts_empty_saying_so(tmp_path):
    cli = Cli(tmp_path / "home")
    port = free_port()
    started = json.loads(cli("--json", "local", "start", "--port", str(port)).stdout)
    assert started["state"] == "started empty (no saved state)"
    try:
        cli("--local", "--stack", "keep", "up")
        [order] = json.loads(cli("--local", "--json", "--stack", "keep", "publish-test").stdout)["published"]
        assert cli("--local", "--stack", "keep", "verify", "--timeout", "30").returncode == 0
        kept = tmp_path / "home" / "embedded-aws.state"
        before = kept.stat().st_mtime_ns if kept.exists() else None
        cli("--local", "--stack", "keep", "publish-test")  # a write after the order landed: a snapshot follows it
        wait_for(lambda: kept.exists() and kept.stat().st_mtime_ns != before, 60, "a snapshot after the order landed")
        os.killpg(started["pid"], signal.SIGKILL)  # a crash: no chance to save anything more
        wait_for(lambda: not psutil.pid_exists(started["pid"]), 10, "the daemon to die")

        again = json.loads(cli("--json", "local", "start", "--port", str(port)).stdout)
        assert again["state"].startswith("restored the state saved at ")
        verified = json.loads(cli("--local", "--json", "--stack", "keep", "verify", "--order-id", order["orderId"],
                                  "--timeout", "30").stdout)  # fmt: skip
        assert verified["ok"], verified
        cli("local", "stop")

        fresh = json.loads(cli("--json", "local", "start", "--port", str(port), "--fresh").stdout)
        assert fresh["state"] == "started empty (--fresh)"
        lost = cli("--local", "--stack", "keep", "verify", "--timeout", "1", check=False)
        assert lost.returncode == 1 and len(lost.stderr.strip().splitlines()) == 1
        assert lost.stderr.startswith("error: The embedded AWS started empty at ")
        assert "(--fresh): run `orderflow --local up`" in lost.stderr
    finally:
        cli("local", "stop", check=False)
