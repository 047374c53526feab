"""Absolute throughput of one side of bench/pipeline.py, alone on a fresh embedded AWS: the boto3 floor or the
pipeline's burst. For comparing two versions of the code run alternately (the ratio hides a change both sides share).

    python bench/throughput.py floor|burst [--orders N]
"""

from __future__ import annotations

import argparse
import time

from common import stacks_on, start_embedded  # also puts the project on sys.path
from pipeline import floor_run, pipeline_run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("side", choices=["floor", "burst"])
    parser.add_argument("--orders", type=int, default=2000)
    args = parser.parse_args()
    embedded = start_embedded(runtime=True)
    try:
        aws, [pipeline, floor] = stacks_on(embedded, "bench", "floor")
        lam = aws.client("lambda")
        for mapping in lam.list_event_source_mappings(FunctionName=floor.function_name)["EventSourceMappings"]:
            lam.delete_event_source_mapping(UUID=mapping["UUID"])  # the floor loop consumes this queue itself
        time.sleep(1.5)
        pipeline_run(aws, pipeline, 20)  # warm the runtime: processes started, clients created
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
