"""Benchmark 5: two writers at once on one stack — `up`‖`up`, `up`‖`down`, `down`‖`down` through the real CLI on a
background embedded AWS — against one writer alone, side by side in the same run. The second writer waits for the
first (the stack's lock), so a pair should take well under twice a single run.

    python bench/one_writer.py [--quick] [--rounds N] [--realistic]
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid

from common import median  # also puts the project on sys.path

TARGET = 2.0  # a pair within 2x of one writer alone


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round (under a minute)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--realistic", action="store_true", help="a realistic control plane at time scale 0.05")
    args = parser.parse_args()
    rounds = 1 if args.quick else args.rounds
    home = tempfile.mkdtemp(prefix="orderflow-bench-")
    env = {**os.environ, "ORDERFLOW_HOME": home}
    cli = [sys.executable, "-m", "orderflow"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pace = ["--realistic", "--time-scale", "0.05"] if args.realistic else []
    subprocess.run([*cli, "local", "start", "--port", str(port), *pace], env=env, check=True, capture_output=True)

    def once(*commands: list[str]) -> float:
        started = time.perf_counter()
        quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}  # the waiting writer says so
        running = [subprocess.Popen([*cli, "--local", *c], env=env, **quiet) for c in commands]
        if any(p.wait() != 0 for p in running):
            raise SystemExit(f"a writer failed: {commands}")
        return time.perf_counter() - started

    rows: dict[str, list[float]] = {k: [] for k in ("up", "down", "up||up", "up||down", "down||down")}
    try:
        for _ in range(rounds):
            alone, pair = f"b{uuid.uuid4().hex[:6]}", f"b{uuid.uuid4().hex[:6]}"
            rows["up"].append(once(["--stack", alone, "up"]))
            rows["down"].append(once(["--stack", alone, "down", "--yes"]))
            rows["up||up"].append(once(["--stack", pair, "up"], ["--stack", pair, "up"]))
            rows["up||down"].append(once(["--stack", pair, "up"], ["--stack", pair, "down", "--yes"]))
            once(["--stack", pair, "up"])
            rows["down||down"].append(once(["--stack", pair, "down", "--yes"], ["--stack", pair, "down", "--yes"]))
    finally:
        subprocess.run([*cli, "local", "stop"], env=env, capture_output=True)
    up, down = median(rows["up"]), median(rows["down"])
    ratios = {
        "up||up": median(rows["up||up"]) / up,
        "up||down": median(rows["up||down"]) / (up + down),
        "down||down": median(rows["down||down"]) / down,
    }
    print(json.dumps({k: round(median(v), 2) for k, v in rows.items()}))
    worst = max(ratios.values())
    where = "realistic x0.05" if args.realistic else "instant"
    described = ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items())
    print(f"RESULT one writer ({where}, {rounds} round(s)): {described} of one writer alone (target < {TARGET}x)")
    return 0 if worst < TARGET else 1


if __name__ == "__main__":
    raise SystemExit(main())
