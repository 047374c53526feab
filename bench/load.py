"""Load: N orders (10,000 by default) through the embedded pipeline, reconciled to zero lost.

python bench/load.py [--quick] [--orders N]
"""

from __future__ import annotations

import argparse
import os
import time

from common import (
    depth,
    function_processes_rss_mb,
    peak_rss_mb,
    stacks_on,
    start_embedded,
    table,
)  # also puts the project on sys.path

from orderflow.flow.publish import publish_orders, sample_order
from orderflow.stack import StackConfig


def stored_ids(aws, config: StackConfig) -> set[str]:
    pages = (
        aws.client("dynamodb")
        .get_paginator("scan")
        .paginate(TableName=config.table_name, ProjectionExpression="orderId")
    )
    return {item["orderId"]["S"] for page in pages for item in page["Items"]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1,000 orders")
    parser.add_argument("--orders", type=int, default=10_000)
    args = parser.parse_args()
    count = 1000 if args.quick else args.orders

    embedded = start_embedded(runtime=True)
    try:
        aws, [config] = stacks_on(embedded, "load")
        started = time.monotonic()
        published = {p.order_id for p in publish_orders(aws, config, [sample_order() for _ in range(count)])}
        publish_seconds = time.monotonic() - started
        deadline = started + max(120, count / 10)
        while time.monotonic() < deadline:
            if depth(aws, config.queue_name) == 0 and len(stored := stored_ids(aws, config)) >= count:
                break
            time.sleep(2)
        elapsed = time.monotonic() - started
        stored = stored_ids(aws, config)
        dead = depth(aws, config.dlq_name)
        rss = peak_rss_mb(os.getpid())
        _, workers = function_processes_rss_mb(embedded)
    finally:
        embedded.stop()
    lost = len(published - stored) - dead
    print(
        table(
            ["orders published", "written", "dead-lettered", "lost", "publish s", "total s", "orders/s"],
            [
                [
                    len(published),
                    len(stored & published),
                    dead,
                    lost,
                    f"{publish_seconds:.1f}",
                    f"{elapsed:.1f}",
                    f"{count / elapsed:.0f}",
                ]
            ],
        )
    )
    print(f"peak RSS: embedded AWS + runtime {rss:.0f} MB, function processes {workers:.0f} MB together")
    print(f"RESULT {len(published)} orders, {lost} lost, {dead} dead-lettered (target: 0 lost)")
    return 0 if lost == 0 and len(stored & published) == count else 1


if __name__ == "__main__":
    raise SystemExit(main())
