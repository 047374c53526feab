"""Benchmark 1: how fast `orderflow up` / `down` run and how many API calls they spend, against the guide scripted
with the AWS CLI — side by side, alternating, on one embedded AWS.

    python bench/provision.py [--quick] [--rounds N]
    python bench/provision.py --realistic [--quick] [--rounds N] [--time-scale F]
    python bench/provision.py --restricted [--quick] [--rounds N]

--realistic: `up` on AWS's clock (a `--realistic` embedded AWS, AWS's delays x1.0, x0.25 with --quick) against the
critical path (the longest chain of simulated waits `up` cannot avoid), and against the same plan run step by step.
--restricted: `up` and `down` as an IAM user holding exactly `orderflow policy`'s document (every call evaluated, and
`up` asks IAM first what the user may do) against the same as the administrator, alternating.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, ApiCounter, median, run, split, start_embedded, table

from orderflow.aws import connect
from orderflow.provision import operations, planner
from orderflow.stack import StackConfig

REGION = "eu-central-1"
RESOURCES = len(planner.RESOURCES)  # table, topics, queues, alarm, subscription, role, log group, function, trigger


def realistic(args: argparse.Namespace) -> int:
    """`orderflow up` (the CLI, independent steps side by side) and the same plan step by step (in-process), on
    fresh stacks of one realistic embedded AWS, alternating."""
    from orderflow.local.realism.control_plane import critical_path
    from orderflow.local.server.embedded import EmbeddedAws
    from orderflow.local.server.state import LOCAL_CREDENTIALS
    from orderflow.provision.base import Context

    scale = args.time_scale or (0.25 if args.quick else 1.0)
    rounds = args.rounds or (1 if args.quick else 2)
    embedded = EmbeddedAws(port=0, runtime=False, time_scale=scale, realistic=True).start()
    orderflow = [sys.executable, "-m", "orderflow", "--endpoint-url", embedded.endpoint, "--region", REGION]
    aws = connect(REGION, endpoint_url=embedded.endpoint, credentials=LOCAL_CREDENTIALS)
    concurrent: list[float] = []
    sequential: list[float] = []
    try:
        for i in range(rounds):
            seconds, _ = run([*orderflow, "--stack", f"c{i}", "up"])
            concurrent.append(seconds)
            ctx = Context(aws=aws, config=StackConfig(f"s{i}"), time_scale=scale)
            started = time.perf_counter()
            operations.converge(ctx, concurrent=False)
            sequential.append(time.perf_counter() - started)
            run([*orderflow, "--stack", f"c{i}", "down", "--yes"])
            run([*orderflow, "--stack", f"s{i}", "down", "--yes"])
    finally:
        embedded.stop()
    path = critical_path(scale)
    up, step_by_step = median(concurrent), median(sequential)
    print(f"`up` on a realistic embedded AWS (AWS's delays x{scale:g}), {rounds} round(s), fresh stacks, alternating")
    print(
        table(
            ["plan", "min s", "median s", "x critical path"],
            [
                ["orderflow up (CLI, steps side by side)", f"{min(concurrent):.1f}", f"{up:.1f}", f"{up / path:.2f}"],
                [
                    "same plan, step by step (in-process)",
                    f"{min(sequential):.1f}",
                    f"{step_by_step:.1f}",
                    f"{step_by_step / path:.2f}",
                ],
            ],
        )
    )
    print(f"step by step takes {step_by_step / up:.2f}x as long as side by side")
    ratio = up / path
    print(
        f"RESULT realistic up {up:.1f}s, critical path {path:.1f}s, {ratio:.2f}x of the critical path (target <= 1.2x)"
    )
    return 0 if ratio <= 1.2 or args.quick else 1


def restricted(args: argparse.Namespace) -> int:
    """`up` as a least-privilege deployer against `up` as the administrator, side by side on one embedded AWS."""
    import boto3

    rounds = 1 if args.quick else (args.rounds or 5)
    embedded = start_embedded(runtime=False, cloudwatch=False)
    orderflow = [sys.executable, "-m", "orderflow", "--endpoint-url", embedded.endpoint, "--region", REGION]
    admin = {"AWS_ACCESS_KEY_ID": "admin", "AWS_SECRET_ACCESS_KEY": "admin"}
    times: dict[str, list[float]] = {}
    try:
        iam = boto3.client("iam", endpoint_url=embedded.endpoint, region_name=REGION, aws_access_key_id="a",
                           aws_secret_access_key="a")  # fmt: skip
        for i in range(rounds):
            stacks = {"administrator": (f"a{i}", admin), "IAM user": (f"u{i}", None)}
            for who, (stack, keys) in stacks.items():
                if keys is None:
                    _, policy = run([*orderflow, "--json", "--stack", stack, "policy"], {**os.environ, **admin})
                    iam.create_user(UserName=f"deployer{i}")
                    iam.put_user_policy(UserName=f"deployer{i}", PolicyName="orderflow", PolicyDocument=policy)
                    key = iam.create_access_key(UserName=f"deployer{i}")["AccessKey"]
                    keys = {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}
                env = {**os.environ, **keys}
                for phase in ("up", "down"):
                    cmd = [*orderflow, "--stack", stack, phase, *(["--yes"] if phase == "down" else [])]
                    seconds, _ = run(cmd, env)
                    times.setdefault(f"{phase} as {who}", []).append(seconds)
    finally:
        embedded.stop()
    rows = [[name, f"{min(t):.2f}", f"{median(t):.2f}"] for name, t in times.items()]
    print(f"`up` and `down` on one embedded AWS, {rounds} round(s), as the administrator and as an IAM user holding")
    print("exactly `orderflow policy`'s document, alternating (the user's `up` asks IAM first what it may do)")
    print(table(["phase", "min s", "median s"], rows))
    ratio = median(times["up as IAM user"]) / median(times["up as administrator"])
    down = median(times["down as IAM user"]) / median(times["down as administrator"])
    print(
        f"RESULT up as a least-privilege user takes {ratio:.2f}x the administrator's (target <= 1.2x); down {down:.2f}x"
    )
    return 0 if ratio <= 1.2 or args.quick else 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="one round (well under a minute)")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--realistic", action="store_true", help="up on AWS's clock, against its critical path")
    parser.add_argument("--time-scale", type=float, default=None, help="--realistic: AWS's delays times this")
    parser.add_argument("--restricted", action="store_true", help="up as a least-privilege IAM user vs as admin")
    args = parser.parse_args()
    if args.realistic:
        return realistic(args)
    if args.restricted:
        return restricted(args)
    rounds = 1 if args.quick else (args.rounds or 5)
    aws_cli = shutil.which("aws") or str(Path(sys.executable).with_name("aws"))
    if not Path(aws_cli).exists():
        raise SystemExit("the AWS CLI is needed for the baseline: pip install awscli")

    counter = ApiCounter()
    # No CloudWatch minute: its once-a-minute PutMetricData would count as a write of whichever phase it fell in.
    embedded = start_embedded(runtime=False, counter=counter, cloudwatch=False)
    env = {"ENDPOINT": embedded.endpoint, "REGION": REGION, "PATH": f"{Path(aws_cli).parent}:{os.environ['PATH']}"}
    orderflow = [sys.executable, "-m", "orderflow", "--endpoint-url", embedded.endpoint, "--region", REGION]
    sys.path.insert(0, str(ROOT))
    from orderflow.provision.package import build_package

    zip_path = Path(tempfile.mkdtemp()) / "function.zip"
    zip_path.write_bytes(build_package().zip_bytes)

    phases: dict[str, list[float]] = {}
    calls: dict[str, tuple[int, int]] = {}
    leftovers = 0

    def measure(name: str, cmd: list[str]) -> None:
        before = counter.snapshot()
        seconds, _ = run(cmd, env)
        phases.setdefault(name, []).append(seconds)
        calls[name] = split(counter.snapshot() - before)

    try:
        for i in range(rounds):
            measure(
                "script: guide by hand (up)",
                ["bash", str(ROOT / "bench/guide_by_hand.sh"), "up", f"g{i}", str(zip_path)],
            )
            measure("orderflow up (fresh)", [*orderflow, "--stack", f"o{i}", "up"])
            measure("orderflow up (no-op)", [*orderflow, "--stack", f"o{i}", "up"])
            measure("script: teardown by hand", ["bash", str(ROOT / "bench/guide_by_hand.sh"), "down", f"g{i}"])
            measure("orderflow down", [*orderflow, "--stack", f"o{i}", "down", "--yes"])
            _, status = run([*orderflow, "--json", "--stack", f"o{i}", "status"], env)
            leftovers += status.count('"state": "exists"') + status.count('"state": "foreign"')
        # Peak memory of one `orderflow up` process.
        probe = (
            "import resource, subprocess, sys; subprocess.run(sys.argv[1:], check=True, capture_output=True); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
        )
        out = subprocess.run(
            [sys.executable, "-c", probe, *orderflow, "--stack", "mem", "up"],
            env={**os.environ, "AWS_ACCESS_KEY_ID": "b", "AWS_SECRET_ACCESS_KEY": "b"},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        up_rss_mb = int(out.strip()) / 1024
    finally:
        embedded.stop()

    rows = []
    for name, times in phases.items():
        reads, writes = calls[name]
        rows.append([name, f"{min(times):.2f}", f"{median(times):.2f}", reads, writes])
    print(f"provisioning on one embedded AWS, {rounds} round(s), alternating; API calls counted at the server")
    print(table(["phase", "min s", "median s", "reads", "writes"], rows))
    script = median(phases["script: guide by hand (up)"])
    fresh = median(phases["orderflow up (fresh)"])
    noop_reads, noop_writes = calls["orderflow up (no-op)"]
    print(f"no-op up: {noop_writes} writes, {noop_reads} reads for {RESOURCES} resources (+5 inline policies)")
    print(f"down leaves behind: {leftovers} resource(s)")
    print(f"peak RSS of `orderflow up`: {up_rss_mb:.0f} MB")
    print(
        f"RESULT fresh up is {script / fresh:.1f}x faster than the scripted guide (target >= 5x); "
        f"no-op up writes {noop_writes}; down leaves {leftovers}"
    )
    # A ratio of times is noise in a short run; writes and leftovers are counted, so --quick holds them too.
    deterministic = noop_writes == 0 and leftovers == 0
    return 0 if deterministic and (script / fresh >= 5 or args.quick) else 1


if __name__ == "__main__":
    raise SystemExit(main())
