"""Benchmark 3: how quickly `verify` knows — the time from an order landing in DynamoDB to verify returning
success (the poller's overshoot), on one warm embedded AWS.

    python bench/verify.py [--quick] [--rounds N]
"""

from __future__ import annotations

import argparse
import time

from common import median, stacks_on, start_embedded, table  # also puts the project on sys.path

from orderflow.flow.logs import fetch_events, quoted
from orderflow.flow.publish import publish_orders, sample_order
from orderflow.flow.verify import verify


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="5 rounds (well under a minute)")
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    rounds = 5 if args.quick else args.rounds

    embedded = start_embedded(runtime=True)
    rows, overshoots, totals = [], [], []
    try:
        aws, [config] = stacks_on(embedded, "verify")
        for i in range(rounds + 1):
            [published] = publish_orders(aws, config, [sample_order()])
            started = time.time()
            report = verify(aws, config, published.order_id, published, timeout=30)
            returned = time.time()
            if not report.passed:
                raise SystemExit(f"verify failed in round {i}: {report.first_failure}")
            [landed] = [
                e.timestamp / 1000
                for e in fetch_events(aws, config, published.published_ms - 1000, pattern=quoted(published.order_id))
                if (r := e.handler_record) and r.outcome == "written"
            ]
            if i == 0:
                continue  # the first round pays the cold start
            overshoot = returned - landed
            overshoots.append(overshoot)
            totals.append(returned - started)
            rows.append([i, f"{landed - started:.3f}", f"{returned - started:.3f}", f"{overshoot:.3f}"])
    finally:
        embedded.stop()
    print(f"verify on a warm embedded AWS, {rounds} round(s)")
    print(table(["round", "landed after s", "verify returned after s", "overshoot s"], rows))
    print(
        f"overshoot median {median(overshoots):.3f}s, max {max(overshoots):.3f}s; "
        f"publish -> verified median {median(totals):.3f}s"
    )
    print(f"RESULT median verify overshoot {median(overshoots):.3f}s (target <= 0.5s)")
    return 0 if median(overshoots) <= 0.5 or args.quick else 1


if __name__ == "__main__":
    raise SystemExit(main())
