"""Publishing test orders to the stack's topic, and remembering the last publish so `verify` knows what to check."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from orderflow.aws import Aws, is_not_found
from orderflow.errors import OrderflowError
from orderflow.lambda_code.index import InvalidOrder, validate
from orderflow.paths import state_dir, write_private
from orderflow.stack import StackConfig

# The seed guide's sample order, without the parts that must be fresh for every run.
SAMPLE_FIELDS = {"userId": "U123", "itemName": "Laptop", "quantity": 1, "status": "new"}


@dataclass(frozen=True)
class Published:
    order_id: str
    message_id: str
    published_ms: int
    order: dict[str, Any]


def new_order_id() -> str:
    return f"O-{secrets.token_hex(6)}"


def sample_order(order_id: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """The guide's sample order with a unique orderId and the current time, so a re-run is never fooled."""
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    return {
        "orderId": order_id or new_order_id(),
        **SAMPLE_FIELDS,
        "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
    }


def read_order_file(path: Path) -> list[dict[str, Any]]:
    """Orders from a JSON file (one object or an array), each validated exactly as the handler validates it."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise OrderflowError(f"{path}: no such file") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise OrderflowError(f"{path}: not valid JSON ({e})") from None
    orders = data if isinstance(data, list) else [data]
    if not orders:
        raise OrderflowError(f"{path}: holds no order")
    for position, order in enumerate(orders, 1):
        try:
            validate(order)
        except InvalidOrder as e:
            where = f"order {position}" if isinstance(data, list) else "order"
            raise OrderflowError(f"{path}: {where} is invalid: {e}") from None
    return orders


def publish_orders(aws: Aws, config: StackConfig, orders: list[dict[str, Any]]) -> list[Published]:
    """Publish each order as its own SNS message (batches of 10 per call)."""
    topic_arn = aws.arns.topic(config.topic_name)
    sns = aws.client("sns")
    published: list[Published] = []
    for start in range(0, len(orders), 10):
        chunk = orders[start : start + 10]
        now_ms = int(time.time() * 1000)
        try:
            if len(chunk) == 1:
                ids = [sns.publish(TopicArn=topic_arn, Message=json.dumps(chunk[0]))["MessageId"]]
            else:
                response = sns.publish_batch(
                    TopicArn=topic_arn,
                    PublishBatchRequestEntries=[
                        {"Id": str(i), "Message": json.dumps(order)} for i, order in enumerate(chunk)
                    ],
                )
                if response.get("Failed"):
                    failure = response["Failed"][0]
                    raise OrderflowError(f"SNS refused an order: {failure.get('Code')}: {failure.get('Message')}")
                by_id = {entry["Id"]: entry["MessageId"] for entry in response["Successful"]}
                ids = [by_id[str(i)] for i in range(len(chunk))]
        except ClientError as e:
            if is_not_found(e):
                raise OrderflowError(
                    f"Topic {config.topic_name!r} does not exist in {aws.region}: run `orderflow up` first"
                ) from e
            raise
        published += [Published(o["orderId"], mid, now_ms, o) for o, mid in zip(chunk, ids, strict=True)]
    return published


def _memory_file(config: StackConfig) -> Path:
    return state_dir() / "published" / f"{config.name}.json"


def remember(aws: Aws, config: StackConfig, published: list[Published]) -> None:
    write_private(
        _memory_file(config),
        json.dumps({"endpoint": aws.endpoint_url, "region": aws.region, "orders": [asdict(p) for p in published]}),
    )


def recall(aws: Aws, config: StackConfig) -> list[Published]:
    """The last publish of this stack against this endpoint and region (empty if none)."""
    try:
        data = json.loads(_memory_file(config).read_text())
    except (FileNotFoundError, ValueError):
        return []
    if data.get("endpoint") != aws.endpoint_url or data.get("region") != aws.region:
        return []
    return [Published(**p) for p in data.get("orders", [])]
