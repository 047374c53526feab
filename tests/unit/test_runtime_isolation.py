"""The fence a function runs in, played by a hostile handler: it cannot undo its mounts, read a canary in the
caller's home, orderflow's state folder or the project tree, write anywhere but its /tmp, signal the daemon, or leave
a process behind; a child's memory is counted as the function's. Said in one line where the system cannot fence."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from orderflow.local.runtime.environment import isolation
from orderflow.local.runtime.environment.worker import tree_memory_mb

PROJECT = Path(__file__).resolve().parents[2]

HOSTILE = r"""
import ctypes, json, os, subprocess, sys
report = {}
def attempt(name, action):
    try:
        result = action()
        report[name] = "done" if result is None else result
    except Exception as e:
        report[name] = type(e).__name__
libc = ctypes.CDLL(None, use_errno=True)
for place in sys.argv[1:]:
    report["umount " + place] = libc.umount2(place.encode(), 2) == 0
    attempt("read " + place, lambda: open(place).read())
    attempt("list " + place, lambda: os.listdir(os.path.dirname(place)))
for place in ("/root/.bashrc", "/var/tmp/x", "/usr/x", os.getcwd() + "/x", "/etc/x"):
    attempt("write " + place, lambda: open(place, "w").write("owned") and None)
attempt("write /tmp/x", lambda: open("/tmp/x", "w").write("mine") and None)
attempt("mount tmpfs", lambda: libc.mount(b"x", b"/usr", b"tmpfs", 0, None) == 0 or ctypes.get_errno())
report["capabilities"] = [l.split()[1] for l in open("/proc/self/status") if l.startswith("CapEff")][0]
nested = "umount -l /usr 2>/dev/null; cat " + " ".join(sys.argv[1:]) + " 2>/dev/null"
attempt("unshare", lambda: subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", nested],
                                          capture_output=True, text=True).stdout)
report["processes"] = sorted(int(p) for p in os.listdir("/proc") if p.isdigit())
print(json.dumps(report))
"""


def fenced() -> isolation.Isolation:
    isolation.isolation.cache_clear()
    found = isolation.isolation()
    if not found.fenced:
        pytest.skip(f"this system cannot fence function processes: {found.unavailable}")
    return found


def run_fenced(fence: isolation.Isolation, code: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        fence.command([sys.executable, "-I", str(code / "hostile.py"), *argv], code),
        capture_output=True, text=True, timeout=120, cwd=code, stdin=subprocess.DEVNULL,
    )  # fmt: skip


def test_a_hostile_handler_cannot_undo_its_fence_or_reach_the_callers_secrets(tmp_path, monkeypatch):
    home, state, code = tmp_path / "home", tmp_path / "state", tmp_path / "code"
    canaries = [home / ".aws" / "credentials", home / ".ssh" / "id_ed25519", home / ".bash_history",
                home / "project" / ".env", state / "local.log", PROJECT / "pyproject.toml"]  # fmt: skip
    for canary in canaries[:-1]:
        canary.parent.mkdir(parents=True, exist_ok=True)
        canary.write_text("caller-secret")
    code.mkdir()
    (code / "hostile.py").write_text(HOSTILE)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("ORDERFLOW_HOME", str(state))
    result = run_fenced(fenced(), code, *map(str, canaries))
    assert result.returncode == 0, result.stderr
    assert "caller-secret" not in result.stdout
    report = json.loads(result.stdout)
    for canary in map(str, canaries):
        assert report[f"umount {canary}"] is False
        assert report[f"read {canary}"] == "FileNotFoundError", canary
    # Of the project's folder, at most the way to the runtime client (an editable install): nothing else of it.
    assert report[f"list {canaries[-1]}"] in ("FileNotFoundError", ["orderflow"])
    # The Python's own folder is there; what lies beside it in the caller's home is not.
    for place in ("/root/.bashrc", "/var/tmp/x", "/usr/x", f"{code}/x", "/etc/x"):
        assert report[f"write {place}"] in ("OSError", "FileNotFoundError", "PermissionError"), place
    assert report["write /tmp/x"] == "done"
    assert report["mount tmpfs"] != "done" and report["mount tmpfs"] is not True
    assert int(report["capabilities"], 16) == 0
    assert "caller-secret" not in str(report["unshare"])  # a namespace of its own reveals nothing either
    assert os.getpid() not in report["processes"] and max(report["processes"]) < 100  # its own PID namespace
    assert not (home / ".bashrc").exists() and not (code / "x").exists()


def test_beside_the_python_the_callers_home_holds_nothing(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "hostile.py").write_text("import os, sys; print(os.listdir(os.path.dirname(sys.base_prefix)))")
    result = run_fenced(fenced(), code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == repr([os.path.basename(sys.base_prefix)])


DETACHED = """
import os, subprocess, sys, time
child = subprocess.Popen(["sleep", "600"], start_new_session=True)
print(child.pid, flush=True)
time.sleep(600)
"""


def test_a_detached_child_ends_with_its_environment(tmp_path):
    code = tmp_path / "code"
    code.mkdir()
    (code / "hostile.py").write_text(DETACHED)
    fence = fenced()
    process = subprocess.Popen(
        fence.command([sys.executable, "-I", str(code / "hostile.py")], code),
        stdout=subprocess.PIPE, text=True, start_new_session=True, cwd=code,
    )  # fmt: skip
    try:
        assert process.stdout is not None and process.stdout.readline().strip()  # the child runs
        sleepers = _sleepers()
        assert sleepers, "the detached child is running"
    finally:
        os.killpg(process.pid, signal.SIGKILL)  # what the runtime does when an environment ends
        process.wait(timeout=60)
    deadline = time.monotonic() + 60
    while set(_sleepers()) & set(sleepers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not set(_sleepers()) & set(sleepers)


def _sleepers() -> list[int]:
    import psutil

    return [p.pid for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", "600"]]


def test_memory_is_counted_for_the_whole_tree(tmp_path):
    """A child that allocates is the function's memory, as Lambda counts it."""
    script = tmp_path / "parent.py"
    script.write_text(
        "import subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', 'b = bytearray(200 * 1024 * 1024); print(1, flush=True); "
        "import time; time.sleep(600)'], stdout=subprocess.PIPE)\n"
        "child.stdout.readline(); print('ready', flush=True); child.wait()\n"
    )
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert process.stdout is not None and process.stdout.readline().strip() == "ready"
        used = tree_memory_mb(process.pid)
        assert used is not None and used >= 200
        assert (tree_memory_mb(process.pid, include_root=False) or 0) >= 200
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=60)


def test_without_unshare_functions_run_with_a_scrubbed_environment_and_it_is_said(monkeypatch, caplog):
    monkeypatch.setattr(isolation.shutil, "which", lambda name: None)
    isolation.isolation.cache_clear()
    try:
        found = isolation.isolation()
    finally:
        isolation.isolation.cache_clear()
    assert found.command(["python", "x"]) == ["python", "x"]
    assert not found.fenced
    assert "there is no `unshare` on this system" in found.describe()
    assert "scrubbed environment only" in caplog.text
