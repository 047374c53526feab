"""The benchmark scripts run in --quick mode, so they never rot; their figures go to docs/benchmarks.md."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.e2e.conftest import PROJECT_ROOT

pytestmark = [pytest.mark.e2e, pytest.mark.slow]


@pytest.mark.parametrize(
    "script",
    ["provision", "provision --restricted", "pipeline", "verify", "load", "one_writer", "throttle", "fence"],
)
def test_benchmark_quick_mode_runs_and_reports_its_ratio(script):
    name, *flags = script.split()
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "bench" / f"{name}.py"), "--quick", *flags],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=PROJECT_ROOT,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    last = result.stdout.strip().splitlines()[-1]
    assert last.startswith("RESULT ") and "(target" in last
