"""ProcessOrderFunction: writes orders arriving from SQS (via SNS) into the DynamoDB table.

Deployed alone in the zip: it imports only the standard library and boto3 (bundled in the Lambda runtime).

Contract (see DESIGN.md §4):
- every record is either written, recognised as stale, or reported back in `batchItemFailures` so SQS retries it
  and finally moves it to the dead-letter queue; nothing is dropped;
- the write is conditional, so redelivered duplicates are harmless and an older update never overwrites a newer;
- one JSON log line per record ties the orderId to the SQS messageId and the SNS MessageId.
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from decimal import Context, Decimal
from typing import Any

import boto3
from botocore.exceptions import BotoCoreError, ClientError

STRING_FIELDS = ("userId", "itemName", "status")
# DynamoDB's limit for a partition key value.
MAX_KEY_BYTES = 2048
# DynamoDB numbers carry at most 38 significant digits, between 1E-130 and 9.99…E+125 in magnitude; maps and lists
# nest at most 32 levels; an item is at most 400 KB (DynamoDB Developer Guide, "Quotas": data types and items).
MAX_QUANTITY = 10**38 - 1
MAX_DIGITS = 38
SMALLEST_NUMBER = Decimal("1E-130")
TOO_LARGE_NUMBER = Decimal("1E+126")
MAX_DEPTH = 32
MAX_ITEM_BYTES = 400 * 1024
# Normalised UTC copy of `timestamp`, fixed width so that DynamoDB's string comparison orders it correctly even
# when publishers use different offsets ("…+02:00" vs "…Z").
ORDER_CLOCK_ATTRIBUTE = "timestampUtc"
# A write lands unless the stored version of the order is newer.
WRITE_CONDITION = "attribute_not_exists(orderId) OR #clock <= :clock"

_FRACTION = re.compile(r"(?<=T\d\d:\d\d:\d\d)\.(\d+)")

# Created once per process: warm invocations reuse the client and its connections.
_TABLES: dict[str, Any] = {}


class InvalidOrder(ValueError):
    """The record can never be written as it is; retries will not help, so it belongs in the DLQ. `sns_message_id`:
    the SNS MessageId of an envelope whose Message is unusable, so the log line still names it (trace finds it)."""

    def __init__(self, message: str, sns_message_id: str | None = None) -> None:
        super().__init__(message)
        self.sns_message_id = sns_message_id


def _table() -> Any:
    name = os.environ["TABLE_NAME"]
    if name not in _TABLES:
        _TABLES[name] = boto3.resource("dynamodb").Table(name)
    return _TABLES[name]


def _reject_constant(name: str) -> Any:
    raise InvalidOrder(f"{name} is not a valid number")


def loads(text: str) -> Any:
    """JSON as DynamoDB will store it: numbers as Decimal (exact; DynamoDB refuses floats), and NaN/Infinity, which
    are not JSON numbers, refused outright."""
    return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)


def _is_sns_envelope(body: Any) -> bool:
    return isinstance(body, dict) and "TopicArn" in body and body.get("Type") in ("Notification", None)


def unwrap(body_text: Any) -> tuple[Any, str | None]:
    """The order payload of one SQS body and the SNS MessageId when the body is an SNS envelope."""
    if not isinstance(body_text, str) or not body_text.strip():
        raise InvalidOrder("message body is empty")
    try:
        body = loads(body_text)
    except (ValueError, RecursionError) as e:
        raise InvalidOrder(f"message body is not JSON: {e}") from None
    if not _is_sns_envelope(body):
        return body, None
    sns_message_id = body.get("MessageId") if isinstance(body.get("MessageId"), str) else None
    message = body.get("Message")
    if not isinstance(message, str):
        raise InvalidOrder("SNS envelope has no Message string", sns_message_id)
    try:
        return loads(message), sns_message_id
    except (ValueError, RecursionError) as e:
        raise InvalidOrder(f"SNS Message is not JSON: {e}", sns_message_id) from None


def order_clock(timestamp: Any) -> str:
    """The timestamp as fixed-width UTC ISO-8601; a timestamp without offset is taken as UTC."""
    if not isinstance(timestamp, str):
        raise InvalidOrder("timestamp must be an ISO-8601 string")
    text = timestamp.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # Python < 3.11 (the python3.9/3.10 runtimes) parses only 3- or 6-digit fractions: pad or cut to 6.
    text = _FRACTION.sub(lambda m: "." + (m.group(1) + "000000")[:6], text, count=1)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidOrder(f"timestamp {timestamp[:64]!r} is not ISO-8601") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    try:
        return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    except OverflowError:  # 0001-01-01T00:00:00+01:00 is before the year 1 in UTC
        raise InvalidOrder(f"timestamp {timestamp[:64]!r} is out of range in UTC") from None


def validate(order: Any) -> dict[str, Any]:
    """Check the order's fields; unknown extra fields are kept as they are."""
    if not isinstance(order, dict):
        raise InvalidOrder(f"order must be a JSON object, not {type(order).__name__}")
    order_id = order.get("orderId")
    if not isinstance(order_id, str) or not order_id.strip():
        raise InvalidOrder("orderId must be a non-empty string")
    if len(order_id.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidOrder(f"orderId is longer than {MAX_KEY_BYTES} bytes")
    for name in STRING_FIELDS:
        if not isinstance(order.get(name), str):
            raise InvalidOrder(f"{name} must be a string")
    quantity = order.get("quantity")
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 1 <= quantity <= MAX_QUANTITY:
        raise InvalidOrder("quantity must be an integer >= 1")
    order_clock(order.get("timestamp"))
    _check_storable(order, "order", 0)
    size = len(json.dumps(order, default=str, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    if size > MAX_ITEM_BYTES:
        raise InvalidOrder(f"order is {size} bytes; DynamoDB stores at most 400 KB ({MAX_ITEM_BYTES} bytes) per item")
    return order


def _check_number(value: int | float | Decimal, where: str) -> None:
    number = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
    if not number.is_finite():
        raise InvalidOrder(f"{where} is not a finite number")
    if number.is_zero():
        return
    # Counted from the digits themselves: Decimal.normalize() would round to the context's 28 digits first.
    digits = len("".join(map(str, number.as_tuple().digits)).strip("0"))
    if digits > MAX_DIGITS:
        raise InvalidOrder(f"{where} has {digits} significant digits; DynamoDB keeps at most {MAX_DIGITS}")
    if not SMALLEST_NUMBER <= abs(number) < TOO_LARGE_NUMBER:
        raise InvalidOrder(f"{where} is outside DynamoDB's number range (1E-130 to 9.99E+125 in magnitude)")


def _field_path(where: str, key: str) -> str:
    """order.x, or order["a b\\n"] for a name that would not read (or print on one line) as it is."""
    return f"{where}.{key}" if key.isidentifier() else f"{where}[{json.dumps(key)}]"


def _check_storable(value: Any, where: str, depth: int) -> None:
    """What DynamoDB refuses can never be written: empty attribute names (nested map keys included), strings that
    are not valid UTF-8 (a JSON escape like \\udc80 decodes to a lone surrogate), numbers it cannot hold, and maps or
    lists nested deeper than 32 levels."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, (int, float, Decimal)):
        _check_number(value, where)
    elif isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidOrder(f"{where} is not valid UTF-8 text") from None
    elif isinstance(value, (dict, list)):
        if depth > MAX_DEPTH:  # the order itself is level 0; its map and list attributes start level 1
            raise InvalidOrder(f"{where} is nested deeper than DynamoDB's {MAX_DEPTH} levels")
        if isinstance(value, dict):
            for key, nested in value.items():
                if key == "":
                    raise InvalidOrder(f"{where} has an empty field name")
                _check_storable(key, f"a field name in {where}", depth)
                _check_storable(nested, _field_path(where, key), depth + 1)
        else:
            for nested in value:
                _check_storable(nested, where, depth + 1)


# Exact at DynamoDB's precision: the validation let through only numbers of at most MAX_DIGITS significant digits.
_STORED_PRECISION = Context(prec=MAX_DIGITS)


def _storable(value: Any) -> Any:
    """Numbers as DynamoDB stores them. boto3 refuses (decimal.Rounded) a number written with more than 38 digits even
    when the extra ones are trailing zeros (120000…0, 1.5000…0), which DynamoDB itself trims: trim them first."""
    if isinstance(value, dict):
        return {k: _storable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_storable(v) for v in value]
    # a tuple, not `int | Decimal`: the handler runs on every runtime `--runtime` offers, python3.9 included
    if isinstance(value, (int, Decimal)) and not isinstance(value, bool):
        number = Decimal(value)
        if number.is_finite() and len(number.as_tuple().digits) > MAX_DIGITS:
            return number.normalize(_STORED_PRECISION)
    return value


def write(order: dict[str, Any]) -> str:
    """Write the order unless a newer (or equal) version is stored. Returns "written" or "stale"."""
    item = _storable({**order, ORDER_CLOCK_ATTRIBUTE: order_clock(order["timestamp"])})
    try:
        _table().put_item(
            Item=item,
            ConditionExpression=WRITE_CONDITION,
            ExpressionAttributeNames={"#clock": ORDER_CLOCK_ATTRIBUTE},
            ExpressionAttributeValues={":clock": item[ORDER_CLOCK_ATTRIBUTE]},
        )
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
            return "stale"
        raise
    return "written"


# The handler's log line, one per record, is read by orderflow's verify, trace, watch and logs (flow/logs.py's
# HandlerRecord): its event name and fields are defined here once, and the reader is built from this list.
LOG_EVENT = "order"
LOG_FIELDS = ("outcome", "orderId", "sqsMessageId", "snsMessageId", "attempt", "sentAt", "reason", "requestId")


def _log(**fields: Any) -> None:
    unknown = set(fields) - set(LOG_FIELDS)
    if unknown:  # a programming error, caught by the tests: the reader would not see the field
        raise TypeError(f"not a log field: {sorted(unknown)}")
    line = {"event": LOG_EVENT, **{k: v for k, v in fields.items() if v is not None}}
    print(json.dumps(line, default=str), flush=True)


def process_record(record: dict[str, Any], request_id: str | None) -> bool:
    """Handle one SQS record; True when it is done with (written or stale), False when it must be retried."""
    order_id = sns_message_id = reason = None
    try:
        payload, sns_message_id = unwrap(record.get("body"))
        if isinstance(payload, dict) and isinstance(payload.get("orderId"), str):
            order_id = payload["orderId"]
        outcome = write(validate(payload))
    except InvalidOrder as e:
        outcome, reason = "invalid", str(e)
        sns_message_id = sns_message_id or e.sns_message_id
    except (ClientError, BotoCoreError) as e:
        outcome, reason = "error", f"DynamoDB: {e}"
    except Exception as e:  # noqa: BLE001 - one bad record must not fail its neighbours
        outcome, reason = "error", f"{type(e).__name__}: {e}"
    _log(
        outcome=outcome,
        orderId=order_id,
        sqsMessageId=record.get("messageId"),
        snsMessageId=sns_message_id,
        attempt=(record.get("attributes") or {}).get("ApproximateReceiveCount"),
        sentAt=(record.get("attributes") or {}).get("SentTimestamp"),
        reason=reason,
        requestId=request_id,
    )
    return outcome in ("written", "stale")


def lambda_handler(event: dict[str, Any], context: Any) -> dict[str, list[dict[str, str]]]:
    records = (event or {}).get("Records") or []
    if any(not isinstance(r, dict) or not r.get("messageId") for r in records):
        # Without a messageId a failure cannot be reported for one record; failing the whole batch loses nothing.
        raise ValueError("SQS event has a record without messageId")
    request_id = getattr(context, "aws_request_id", None)
    failures = [{"itemIdentifier": r["messageId"]} for r in records if not process_record(r, request_id)]
    return {"batchItemFailures": failures}


def _warm_up() -> None:
    """Create the table client while the module loads: Lambda gives initialisation its own time, so the first
    invocation does not spend its timeout loading the SDK's service model."""
    if not os.environ.get("TABLE_NAME"):
        return  # imported outside a deployed function (tests, tools): the first invocation creates it
    try:
        _table()
    except BotoCoreError as e:  # e.g. no region: the first invocation retries and reports it per record
        print(json.dumps({"event": "init", "outcome": "table client not created", "reason": str(e)}), flush=True)


_warm_up()
