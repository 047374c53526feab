"""What the function fence costs: cold starts and warm invocations of one handler, fenced (its own filesystem view,
no capabilities, its own PID namespace) beside unfenced (the scrubbed environment alone), alternating in one run.

    python bench/fence.py [--rounds N] [--warm N] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import common  # noqa: F401 - puts the project on sys.path

from orderflow.local.runtime.credentials import RoleCredentials
from orderflow.local.runtime.environment import worker as worker_module
from orderflow.local.runtime.environment.isolation import Isolation, isolation
from orderflow.local.runtime.environment.launch import launch_for

HANDLER = "import boto3\ndef handler(event, context):\n    return {'ok': True}\n"


def spec(code: Path) -> worker_module.FunctionSpec:
    return worker_module.FunctionSpec(
        name="fn", arn="arn:aws:lambda:us-east-1:123456789012:function:fn", region="us-east-1",
        handler="index.handler", runtime="python3.13", timeout=30, memory_size=512, variables={},
        code_sha256="bench", code_dir=code, log_group="/aws/lambda/fn",
    )  # fmt: skip


def one_environment(code: Path, fenced: bool, warm: int) -> tuple[float, float]:
    """(seconds until the first invocation answered, median seconds of the warm ones)."""
    launch = launch_for("python3.13")
    chosen = isolation(launch.needs) if fenced else Isolation(unavailable="benchmark: unfenced side")
    worker_module.isolation = lambda needs=(): chosen  # the side this environment runs on
    credentials = RoleCredentials("AKIDBENCH", "secret", "token")
    started = time.perf_counter()
    environment = worker_module.WorkerProcess(spec(code), "http://127.0.0.1:9", credentials, launch)
    try:
        assert environment.invoke({}, "cold").succeeded
        cold = time.perf_counter() - started
        times = []
        for n in range(warm):
            began = time.perf_counter()
            assert environment.invoke({}, f"warm-{n}").succeeded
            times.append(time.perf_counter() - began)
    finally:
        environment.close()
    return cold, statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--warm", type=int, default=50)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    rounds, warm = (2, 5) if args.quick else (args.rounds, args.warm)
    if not isolation(launch_for("python3.13").needs).fenced:
        print("RESULT fence: unavailable on this system (nothing to compare) (target: none)")
        return 0
    with tempfile.TemporaryDirectory() as folder:
        code = Path(folder) / "task"
        code.mkdir()
        (code / "index.py").write_text(HANDLER)
        results: dict[bool, list[tuple[float, float]]] = {True: [], False: []}
        for _ in range(rounds):
            for fenced in (False, True):  # alternating: the machine's noise falls on both sides
                results[fenced].append(one_environment(code, fenced, warm))
    cold = {side: statistics.median(c for c, _ in runs) for side, runs in results.items()}
    hot = {side: statistics.median(w for _, w in runs) for side, runs in results.items()}
    print(f"cold start: unfenced {cold[False] * 1000:.0f} ms, fenced {cold[True] * 1000:.0f} ms")
    print(f"warm invoke: unfenced {hot[False] * 1000:.2f} ms, fenced {hot[True] * 1000:.2f} ms")
    print(
        f"RESULT fence: cold start {cold[True] / cold[False]:.2f}x, warm invoke {hot[True] / hot[False]:.2f}x "
        f"of unfenced over {rounds} rounds (target: warm invoke <= 1.1x)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
