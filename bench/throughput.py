"""Absolute throughput of one side of bench/pipeline.py, alone on a fresh embedded AWS: the boto3 floor or the
pipeline's burst. For comparing two versions of the code run alternately (the ratio hides a change both sides share).

    python bench/throughput.py floor|burst [--orders N]
"""

from __future__ import annotations

import argparse

from common import start_embedded  # also puts the project on sys.path
from pipeline import floor_run, pipeline_and_floor, pipeline_run, warm

from orderflow.stack import StackSettings


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("side", choices=["floor", "burst"])
    parser.add_argument("--orders", type=int, default=2000)
    args = parser.parse_args()
    embedded = start_embedded(runtime=True)
    try:
        aws, pipeline, floor = pipeline_and_floor(embedded, StackSettings().runtime)
        warm(aws, pipeline)
        if args.side == "floor":
            seconds = floor_run(aws, floor, args.orders)
        else:
            seconds, _ = pipeline_run(aws, pipeline, args.orders)
    finally:
        embedded.stop()
    print(f"RESULT {args.side}: {args.orders} orders in {seconds:.2f} s, {args.orders / seconds:.0f} orders/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
