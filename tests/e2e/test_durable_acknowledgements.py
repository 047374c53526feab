"""An order the embedded AWS acknowledged is never lost: the daemon killed with -9 while orders stream in and the
pipeline runs, restarted on the same port, and every published order SNS answered for ends in the table — none
dead-lettered, none lost (the write-ahead journal replayed after the last snapshot).

Without the journal (snapshots alone), it lost 99 of 600 acknowledged orders: those answered since the last snapshot.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time

import boto3
import psutil
import pytest
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from orderflow.flow.publish import sample_order
from tests.e2e.conftest import REGION, Aws, Cli, free_port, wait_for

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ORDERS = 900
KILL_AT = (150, 400, 650)  # acknowledged orders when the daemon is killed


class Publisher(threading.Thread):
    """Publishes ORDERS orders to the topic one by one; an order counts as acknowledged once SNS answered for it.
    A publish that fails because the daemon is down is retried: it was never acknowledged."""

    def __init__(self, aws: Aws, topic_arn: str) -> None:
        super().__init__(daemon=True)
        self.sns = boto3.client(
            "sns",
            endpoint_url=aws.endpoint,
            region_name=REGION,
            aws_access_key_id="test",
            aws_secret_access_key="test",
            config=Config(retries={"max_attempts": 1}, connect_timeout=5, read_timeout=60),
        )
        self.topic_arn = topic_arn
        self.acknowledged: list[str] = []
        self.failures = 0
        self.done = threading.Event()

    def run(self) -> None:
        while len(self.acknowledged) < ORDERS:
            order = sample_order()
            try:
                self.sns.publish(TopicArn=self.topic_arn, Message=json.dumps(order))
            except (BotoCoreError, ClientError):
                self.failures += 1  # the daemon is down or coming back: not acknowledged, sent again
                time.sleep(0.05)  # (pacing the retries, not waiting on an event)
                continue
            self.acknowledged.append(order["orderId"])
        self.done.set()


def _scan(aws: Aws, table: str) -> set[str]:
    pages = aws.client("dynamodb").get_paginator("scan").paginate(TableName=table, ProjectionExpression="orderId")
    return {item["orderId"]["S"] for page in pages for item in page["Items"]}


def test_every_acknowledged_order_survives_kill_9_of_the_embedded_aws(tmp_path):
    cli = Cli(tmp_path / "home")
    port = free_port()
    started = json.loads(cli("--json", "local", "start", "--port", str(port)).stdout)
    try:
        cli("--local", "--stack", "durable", "up")
        aws = Aws(started["endpoint"])
        topic = f"arn:aws:sns:{REGION}:{aws.account}:durable-OrderTopic"
        publisher = Publisher(aws, topic)
        publisher.start()
        pid = started["pid"]
        for count in KILL_AT:
            wait_for(lambda c=count: len(publisher.acknowledged) >= c, 300, f"{count} orders acknowledged")
            os.killpg(pid, signal.SIGKILL)  # the daemon and its function processes, mid-stream
            wait_for(lambda p=pid: not psutil.pid_exists(p), 30, "the daemon to die")
            again = json.loads(cli("--json", "local", "start", "--port", str(port)).stdout)
            assert again["state"].startswith("restored the state saved at "), again
            pid = again["pid"]
        assert publisher.done.wait(600), f"only {len(publisher.acknowledged)} of {ORDERS} orders acknowledged"

        wait_for(lambda: aws.depth("durable-OrderQueue") == 0, 600, "the pipeline to drain")
        written = _scan(aws, "durable-Orders")
        lost = set(publisher.acknowledged) - written
        assert lost == set(), f"{len(lost)} of {ORDERS} acknowledged orders lost across {len(KILL_AT)} kill -9"
        assert aws.depth("durable-OrderQueueDLQ") == 0
        print(f"DURABLE kill -9 x{len(KILL_AT)} | {ORDERS} acknowledged, 0 lost, 0 dead-lettered, "
              f"{publisher.failures} publish(es) refused while the daemon was down")  # fmt: skip
    finally:
        cli("local", "stop", check=False)
