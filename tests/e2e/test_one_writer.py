"""Two writers at once on one stack, through the real CLI: `up`‖`up`, `up`‖`down`, `down`‖`down` end in a stack that
is fully up or fully down, every message true, on an instant and on a realistic embedded AWS. The second writer
waits for the first (the stack's lock) and says for whom."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from tests.e2e.conftest import PROJECT_ROOT, Cli, free_port, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=["instant", "realistic"])
def target(request, tmp_path_factory, embedded, cli):
    """The session's instant embedded AWS, or a realistic one of this module's."""
    if request.param == "instant":
        yield cli
        return
    realistic = Cli(tmp_path_factory.mktemp("orderflow-one-writer"))
    realistic.json("local", "start", "--port", str(free_port()), "--realistic", "--time-scale", "0.05")
    yield realistic
    realistic("local", "stop", check=False)


def start(cli: Cli, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "orderflow", "--local", *args],
        env=cli.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        cwd=PROJECT_ROOT,
    )


def finish(process: subprocess.Popen[str]) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=600)
    return process.returncode, out, err


def holding(cli: Cli, command: str) -> bool:
    """A writer holds the stack's lock (its lock file names it)."""
    locks = Path(cli.env["ORDERFLOW_HOME"]) / "locks"
    return any(f'"command": "{command}"' in p.read_text() for p in locks.glob("*.lock")) if locks.exists() else False


def states(cli: Cli, stack: str) -> set[str]:
    return {r["state"] for r in cli.json("--stack", stack, "status")["resources"]}


def report(line: str) -> None:
    print(f"\nRELIABILITY {line}")


@pytest.fixture
def stack(target):
    name = f"w{uuid.uuid4().hex[:8]}"
    yield name
    target("--local", "--stack", name, "down", "--yes", check=False)


def test_up_and_up_at_once_one_waits_and_the_stack_is_fully_up(target, stack):
    started = time.monotonic()
    first, second = start(target, "--stack", stack, "up"), start(target, "--stack", stack, "up")
    (code1, out1, err1), (code2, out2, err2) = finish(first), finish(second)
    both = time.monotonic() - started
    assert (code1, code2) == (0, 0), (err1, err2)
    assert f"stack {stack} is up" in out1 and f"stack {stack} is up" in out2
    # the second waited for the first (said on stderr), or, on a starved machine, started after it had finished
    assert "waiting for `orderflow up` (pid " in err1 + err2 or "unchanged" in out1 + out2
    assert states(target, stack) == {"exists"}
    plan = target.json("--stack", stack, "up", "--dry-run")
    assert {p["action"] for p in plan["plan"]} == {"unchanged"}
    report(f"one writer | up || up | both exit 0, one waited; stack fully up | {both:.1f}s for the pair")


def test_up_then_down_at_once_ends_fully_down_and_each_says_what_it_did(target, stack):
    up = start(target, "--stack", stack, "up")
    wait_for(lambda: holding(target, "up") or up.poll() is not None, 60, "up to hold the stack's lock")
    down = start(target, "--stack", stack, "down", "--yes")
    (code_up, out_up, err_up), (code_down, out_down, err_down) = finish(up), finish(down)
    assert (code_up, code_down) == (0, 0), (err_up, err_down)
    assert f"stack {stack} is up" in out_up and f"stack {stack} is down" in out_down
    assert states(target, stack) == {"missing"}
    report(f"one writer | up || down | both exit 0, down waited for up; stack fully down ({err_down.strip()[:60]})")


def test_down_and_down_at_once_both_succeed_and_nothing_is_left(target, stack):
    target("--local", "--stack", stack, "up")
    first, second = start(target, "--stack", stack, "down", "--yes"), start(target, "--stack", stack, "down", "--yes")
    (code1, out1, err1), (code2, out2, err2) = finish(first), finish(second)
    assert (code1, code2) == (0, 0), (err1, err2)
    assert "orderflow up" not in err1 + err2  # neither tells the user to bring up a stack that is down
    assert states(target, stack) == {"missing"}
    outcomes = json.dumps([out1, out2])
    assert "already gone" in outcomes  # the second found the first's work done, and said so
