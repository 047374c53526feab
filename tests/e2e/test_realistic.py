"""The real CLI against `orderflow local start --realistic`: AWS's slow, eventually consistent control plane at a
small time scale (every delay of docs/fidelity.md x0.05). up, publish-test, verify, down, and down immediately
followed by up must all succeed, as they must on AWS."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import Cli, free_port

pytestmark = pytest.mark.e2e

SCALE = "0.05"


@pytest.fixture(scope="module")
def realistic(tmp_path_factory):
    """A second embedded AWS, realistic, with its own state folder (so its own pid file)."""
    cli = Cli(tmp_path_factory.mktemp("orderflow-realistic"))
    started = cli.json("local", "start", "--port", str(free_port()), "--realistic", "--time-scale", SCALE)
    assert started["time_scale"] == float(SCALE) and started["realistic"] is True
    yield cli
    cli("local", "stop", check=False)


def _verified(cli: Cli, stack: str) -> None:
    [published] = cli.json("--stack", stack, "publish-test")["published"]
    result = cli("--local", "--json", "--stack", stack, "verify", "--timeout", "60", check=False)
    report = json.loads(result.stdout)
    assert result.returncode == 0, report
    assert report["orderId"] == published["orderId"]
    assert all(check["passed"] for check in report["checks"]), report


def test_up_publish_verify_down_then_up_at_once_succeed_on_a_realistic_control_plane(realistic):
    stack = "real"
    up = realistic.json("--stack", stack, "up")
    assert {r["outcome"] for r in up["results"]} == {"created"}
    status = {r["key"]: r for r in realistic.json("--stack", stack, "status")["resources"]}
    assert status["trigger"]["detail"] == "Enabled"  # up returned once the trigger polls, not while Creating
    _verified(realistic, stack)

    down = realistic.json("--stack", stack, "down", "--yes")
    assert {r["outcome"] for r in down["results"]} == {"deleted"}
    again = realistic("--local", "--stack", stack, "up")  # at once: queue names blocked, mapping just deleted
    assert "is up" in again.stdout
    _verified(realistic, stack)
    realistic.json("--stack", stack, "down", "--yes")
    assert {r["state"] for r in realistic.json("--stack", stack, "status")["resources"]} == {"missing"}


def test_demo_runs_on_a_realistic_control_plane(cli):
    result = cli("demo", "--realistic", "--time-scale", SCALE, timeout=300)
    assert "demo passed" in result.stdout
    assert "realistic control plane" in result.stdout
    assert result.stderr == ""
