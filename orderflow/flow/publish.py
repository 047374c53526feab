"""Publishing test orders to the stack's topic, and remembering the last publish so `verify` knows what to check."""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from orderflow.aws import Aws, is_not_found
from orderflow.errors import AwsError, BadInput, FileProblem, NotFoundError, OrderflowError
from orderflow.lambda_code.index import InvalidOrder, loads, validate
from orderflow.paths import open_private_append, state_dir, write_private
from orderflow.stack import StackConfig

# The seed guide's sample order, without the parts that must be fresh for every run.
SAMPLE_FIELDS = {"userId": "U123", "itemName": "Laptop", "quantity": 1, "status": "new"}


@dataclass(frozen=True)
class Published:
    order_id: str
    message_id: str
    published_ms: int
    order: dict[str, Any]


def to_document(config: StackConfig, published: list[Published]) -> dict[str, Any]:
    return {
        "ok": True,
        "stack": config.name,
        "published": [{"orderId": p.order_id, "messageId": p.message_id} for p in published],
    }


def new_order_id() -> str:
    return f"O-{secrets.token_hex(6)}"


def sample_order(order_id: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    """The guide's sample order with a unique orderId (unless one is given) and the current time, so a re-run is
    never fooled. Validated as the handler will validate it: an orderId it would refuse is refused here."""
    moment = (now or datetime.now(timezone.utc)).astimezone(timezone.utc)
    order = {
        "orderId": new_order_id() if order_id is None else order_id,
        **SAMPLE_FIELDS,
        "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z",
    }
    try:
        return validate(order)
    except InvalidOrder as e:
        raise BadInput(f"--order-id: {e}") from None


def order_json(value: Any) -> str:
    """The order as JSON with every number exactly as read (Decimal keeps all of its digits; a float would round a
    long one silently)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ", ".join(f"{json.dumps(k)}: {order_json(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(order_json(v) for v in value) + "]"
    return json.dumps(value)


def read_order_file(path: Path) -> list[dict[str, Any]]:
    """Orders from a JSON file (one object or an array), each validated exactly as the handler validates it (its
    rules and DynamoDB's limits): a bad order is refused before anything is sent, naming its place in the file."""
    try:
        # NaN and Infinity are kept (as Decimal) only so that validation can name the order and field holding them
        data = json.loads(path.read_text(encoding="utf-8"), parse_float=Decimal, parse_constant=Decimal)
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except IsADirectoryError:
        raise BadInput(f"{path}: is a directory, not a JSON file") from None
    except PermissionError:
        raise BadInput(f"{path}: permission denied") from None
    except RecursionError:
        raise BadInput(f"{path}: nested too deeply to be an order (DynamoDB allows 32 levels)") from None
    except (ValueError, UnicodeDecodeError) as e:
        raise BadInput(f"{path}: not valid JSON ({e})") from None
    orders = data if isinstance(data, list) else [data]
    if not orders:
        raise BadInput(f"{path}: holds no order")
    for position, order in enumerate(orders, 1):
        try:
            validate(order)
        except InvalidOrder as e:
            where = f"order {position}" if isinstance(data, list) else "order"
            raise BadInput(f"{path}: {where} is invalid: {e}") from None
    return orders


def publish_orders(
    aws: Aws,
    config: StackConfig,
    orders: list[dict[str, Any]],
    on_sent: Callable[[list[Published]], None] = lambda sent: None,
    on_sending: Callable[[list[dict[str, Any]]], None] = lambda chunk: None,
) -> list[Published]:
    """Publish each order as its own SNS message (batches of 10 per call); `on_sending` hears of each batch before
    its call, `on_sent` of what SNS accepted after it."""
    topic_arn = aws.arns.topic(config.topic_name)
    sns = aws.client("sns")
    published: list[Published] = []
    for start in range(0, len(orders), 10):
        chunk = orders[start : start + 10]
        now_ms = int(time.time() * 1000)
        failure = None
        on_sending(chunk)
        try:
            if len(chunk) == 1:
                message_id = sns.publish(TopicArn=topic_arn, Message=order_json(chunk[0]))["MessageId"]
                sent = [Published(chunk[0]["orderId"], message_id, now_ms, chunk[0])]
            else:
                response = sns.publish_batch(
                    TopicArn=topic_arn,
                    PublishBatchRequestEntries=[
                        {"Id": str(i), "Message": order_json(order)} for i, order in enumerate(chunk)
                    ],
                )
                by_id = {entry["Id"]: entry["MessageId"] for entry in response.get("Successful", [])}
                sent = [
                    Published(o["orderId"], by_id[str(i)], now_ms, o) for i, o in enumerate(chunk) if str(i) in by_id
                ]
                failure = (response.get("Failed") or [None])[0]
        except ClientError as e:
            if is_not_found(e):
                raise NotFoundError(
                    f"Topic {config.topic_name!r} does not exist in {aws.region}: run `orderflow up` first"
                ) from e
            raise
        if sent:
            published += sent
            on_sent(sent)
        if failure is not None:
            raise AwsError(f"SNS refused an order: {failure.get('Code')}: {failure.get('Message')}")
    return published


class PublishInterrupted(OrderflowError):
    """A publish stopped part way: how many went out, how many were in flight (their call had begun: SNS may or may
    not have them), and that both are recorded for verify and trace."""

    def __init__(self, sent: int, in_flight: int, total: int, cause: BaseException) -> None:
        why = "interrupted" if isinstance(cause, KeyboardInterrupt) else f"stopped ({cause})"
        flying = f", {in_flight} in flight (may have been sent)" if in_flight else ""
        record = (
            "; recorded, so `orderflow verify` checks the last sent and tells an in-flight order from a lost one"
            if sent or in_flight
            else ""
        )
        super().__init__(f"publish-test {why} after sending {sent} of {total} order(s){flying}{record}")
        self.sent, self.in_flight = sent, in_flight
        self.exit_code = 130 if isinstance(cause, KeyboardInterrupt) else 1


def publish_recorded(aws: Aws, config: StackConfig, orders: list[dict[str, Any]]) -> list[Published]:
    """Publish with a journal that never lies: the record is written (and flushed to disk) before anything is sent
    — if it cannot be, nothing is sent — then each batch is recorded as *about to send* before its call and as
    *sent*, with SNS's MessageIds, after it. Killed at any point, the journal's sent and in-flight orders account for
    every order SNS may have. Appending keeps the cost of each batch's record constant, however many orders."""
    path = _memory_file(config)
    header = {"endpoint": aws.endpoint_url, "region": aws.region, "total": len(orders)}
    write_private(path, order_json(header) + "\n", durable=True)  # replaces the record of the last publish
    sent: list[Published] = []
    sending: list[dict[str, Any]] = []

    def about_to_send(chunk: list[dict[str, Any]]) -> None:
        _append(path, {"sending": chunk})
        sending[:] = chunk

    def record(batch: list[Published]) -> None:
        _append(path, {"orders": [asdict(p) for p in batch]})
        sent.extend(batch)
        sending.clear()

    try:
        publish_orders(aws, config, orders, on_sent=record, on_sending=about_to_send)
    except (Exception, KeyboardInterrupt) as e:
        # The counts are the journal's own (an interruption may fall between writing a line and counting it here):
        # what the user is told is what `verify` and `trace` will find.
        try:
            recorded, flying = len(recall(aws, config)), len(in_flight(aws, config))
        except (OrderflowError, KeyboardInterrupt):
            recorded, flying = len(sent), len(sending)
        raise PublishInterrupted(recorded, flying, len(orders), e) from e
    return sent


def _memory_file(config: StackConfig) -> Path:
    return state_dir() / "published" / f"{config.record_name}.json"


def _append(path: Path, line: dict[str, Any]) -> None:
    try:
        with open_private_append(path) as handle:
            handle.write((order_json(line) + "\n").encode())  # order_json writes ASCII (json.dumps escapes the rest)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as e:
        raise FileProblem(f"Cannot write {path}: {e.strerror} (see ORDERFLOW_HOME)") from e


def recall(aws: Aws, config: StackConfig) -> list[Published]:
    """The last publish of this stack against this endpoint and region (empty if none): what was sent of it."""
    return _journal(aws, config)[0]


def in_flight(aws: Aws, config: StackConfig) -> dict[str, dict[str, Any]]:
    """The orders of the last publish whose call began but whose answer never came (the run was interrupted): SNS
    may or may not have them. orderId -> order."""
    sent, sending = _journal(aws, config)
    delivered = {p.order_id for p in sent}
    return {o["orderId"]: o for o in sending if o.get("orderId") not in delivered}


def _journal(aws: Aws, config: StackConfig) -> tuple[list[Published], list[dict[str, Any]]]:
    """(sent, about to send) of the last publish. The record is a header line (endpoint, region, total), then for
    each batch a line `sending` before its call and a line `orders` (what SNS accepted) after it."""
    path = _memory_file(config)
    try:
        lines = [loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except (FileNotFoundError, NotADirectoryError):
        return [], []
    except (OSError, ValueError, RecursionError) as e:
        raise FileProblem(f"{path} cannot be read as a publish record ({e}): delete it, or publish again") from None
    if not lines:
        return [], []
    try:
        header = lines[0]
        if header.get("endpoint") != aws.endpoint_url or header.get("region") != aws.region:
            return [], []
        sent = [Published(**p) for line in lines for p in line.get("orders", [])]
        return sent, [o for line in lines for o in line.get("sending", [])]
    except (AttributeError, TypeError) as e:
        raise FileProblem(
            f"{path} is not a publish record orderflow wrote ({e}): delete it, or publish again"
        ) from None
