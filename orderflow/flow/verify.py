"""Prove every hop of one order's journey — wiring, SQS, Lambda, DynamoDB, CloudWatch Logs, DLQ — with evidence.

Checks are re-evaluated with growing pauses until all pass or the timeout ends: no fixed sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeDeserializer

from orderflow.aws import Aws, or_none
from orderflow.errors import NotFoundError
from orderflow.flow import advice, dlq, permissions
from orderflow.flow.logs import HandlerRecord, LogEvent, fetch_naming
from orderflow.flow.publish import Published
from orderflow.iam.questions import topic_may_send
from orderflow.provision.base import Context
from orderflow.provision.resources.queues import OrderQueue, parse_redrive
from orderflow.provision.resources.subscription import Subscription
from orderflow.provision.resources.topic import Topic
from orderflow.provision.resources.trigger import Trigger
from orderflow.stack import StackConfig

# What each hop proves (for the report) — in the order the message travels.
HOPS = {
    "wiring": "wiring",
    "sqs": "SQS",
    "lambda": "Lambda",
    "dynamodb": "DynamoDB",
    "logs": "CloudWatch Logs",
    "dlq": "DLQ",
}
_DESERIALIZER = TypeDeserializer()
# Logs may be read from a little before the publish: clocks of client and service differ.
CLOCK_SKEW_MS = 60_000


@dataclass
class Check:
    hop: str
    passed: bool | None  # None: not checked
    evidence: str
    hint: str = ""
    seconds: float | None = None

    @property
    def title(self) -> str:
        return HOPS[self.hop]


@dataclass
class VerifyReport:
    order_id: str
    checks: list[Check] = field(default_factory=list)
    seconds: float = 0.0
    in_flight: bool = False  # its publish was interrupted mid-call: it may never have been sent
    warnings: list[str] = field(default_factory=list)  # settings that break under load (flow.advice)

    @property
    def passed(self) -> bool:
        return all(c.passed is not False for c in self.checks) and any(c.passed for c in self.checks)

    @property
    def first_failure(self) -> Check | None:
        return next((c for c in self.checks if c.passed is False), None)

    def to_document(self) -> dict[str, Any]:
        return {
            "ok": self.passed,
            **({} if self.passed else {"code": "check-failed"}),
            "orderId": self.order_id,
            **({"inFlight": True} if self.in_flight else {}),
            "seconds": round(self.seconds, 3),
            "warnings": self.warnings,
            "checks": [
                {
                    "hop": c.hop,
                    "passed": c.passed,
                    "evidence": c.evidence,
                    "hint": c.hint,
                    "seconds": None if c.seconds is None else round(c.seconds, 3),
                }
                for c in self.checks
            ],
        }


def _plain(value: Any) -> Any:
    """DynamoDB's Decimals back to the JSON numbers they were published as."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def mapping_problem(ctx: Context) -> str | None:
    """Why nothing would invoke the function from the queue, or None when the mapping is enabled."""
    mapping = Trigger().read(ctx)
    if mapping is None:
        return "there is no event source mapping from the queue to the function"
    if mapping.state["State"] != "Enabled":
        return f"the event source mapping is {mapping.state['State']}: nothing consumes the queue"
    return None


def queue_depth(ctx: Context) -> int:
    queue = OrderQueue().read(ctx)
    if queue is None:
        return 0
    attributes = queue.state["attributes"]
    return int(attributes.get("ApproximateNumberOfMessages", 0)) + int(
        attributes.get("ApproximateNumberOfMessagesNotVisible", 0)
    )


def check_wiring(ctx: Context) -> Check:
    """Topic, confirmed subscription, queue policy and redrive: what carries a message from SNS into SQS."""
    topic = Topic().read(ctx)
    if topic is None:
        return Check("wiring", False, f"topic {ctx.config.topic_name} does not exist", "run `orderflow up`")
    queue = OrderQueue().read(ctx)
    if queue is None:
        return Check("wiring", False, f"queue {ctx.config.queue_name} does not exist", "run `orderflow up`")
    wiring = Subscription().read(ctx)
    subscription = wiring.state["subscription"] if wiring else None
    if subscription is None:
        return Check("wiring", False, "the topic has no subscription for the queue", "run `orderflow up`")
    if not str(subscription.get("SubscriptionArn", "")).startswith("arn:"):
        return Check("wiring", False, "the subscription is pending confirmation", "run `orderflow up`")
    queue_arn, topic_arn = ctx.arns.queue(ctx.config.queue_name), ctx.arns.topic(ctx.config.topic_name)
    verdict = topic_may_send(wiring.state["policy"], queue_arn, topic_arn, permissions.undecidable(ctx))
    if verdict.depends_on:
        return Check(
            "wiring",
            None,
            f"cannot decide whether the queue policy lets the topic send: it depends on {', '.join(verdict.depends_on)}"
            " (the order's delivery decides)",
        )
    if not verdict.allowed:
        return Check(
            "wiring",
            False,
            "the queue policy does not allow the topic to send: SNS drops every message",
            "run `orderflow up` to restore the queue policy",
        )
    redrive = parse_redrive(queue.state["attributes"].get("RedrivePolicy"))
    if not redrive or redrive["deadLetterTargetArn"] != ctx.arns.queue(ctx.config.dlq_name):
        return Check("wiring", False, "the queue does not redrive to the DLQ", "run `orderflow up`")
    return Check(
        "wiring",
        True,
        f"{subscription['SubscriptionArn'].rsplit(':', 1)[-1][:8]}… confirmed; queue policy allows the topic; "
        f"redrive to {ctx.config.dlq_name} after {redrive['maxReceiveCount']}",
    )


def stored_order(aws: Aws, config: StackConfig, order_id: str) -> dict[str, Any] | None:
    """The order's item, by consistent read, with DynamoDB's Decimals turned back into JSON numbers. A table that
    does not exist is the stack not being up, said so (not a raw ResourceNotFoundException)."""
    read = lambda: aws.client("dynamodb").get_item(  # noqa: E731
        TableName=config.table_name, Key={"orderId": {"S": order_id}}, ConsistentRead=True
    )
    found = or_none(read)
    if found is None:
        raise NotFoundError(
            f"Table {config.table_name!r} does not exist in {aws.region}: the stack is not up (run `orderflow up`)"
        )
    raw = found.get("Item")
    return None if raw is None else _plain({k: _DESERIALIZER.deserialize(v) for k, v in raw.items()})


UNCHECKED = "not checked: no publish of this order is recorded and no log line names it"


@dataclass
class _Evidence:
    """What the logs say about one order right now."""

    order_id: str
    published: Published | None
    events: list[LogEvent]  # log lines naming the order
    records: list[HandlerRecord]  # the handler's lines for this order (for this publish, when known)
    invocation: list[LogEvent] = field(default_factory=list)  # the lines of the invocation that processed it

    @property
    def done(self) -> list[HandlerRecord]:
        return [r for r in self.records if r.done]

    @property
    def rejected(self) -> list[HandlerRecord]:
        return [r for r in self.records if r.outcome in ("invalid", "error")]

    @property
    def refused_writes(self) -> list[HandlerRecord]:
        """Records the handler could not write because DynamoDB refused (AccessDenied, throttling, …): the
        invocation ran; the DynamoDB hop is the broken one."""
        return [r for r in self.rejected if (r.reason or "").startswith("DynamoDB:")]


def _gather(aws: Aws, config: StackConfig, order_id: str, published: Published | None) -> _Evidence:
    start_ms = (published.published_ms if published else int(time.time() * 1000) - 3_600_000) - CLOCK_SKEW_MS
    events = fetch_naming(aws, config, start_ms, order_id)
    records = [r for e in events if (r := e.handler_record) and r.order_id == order_id]
    if published:
        records = [r for r in records if r.sns_message_id == published.message_id]
    evidence = _Evidence(order_id, published, events, records)
    ran = evidence.done or evidence.refused_writes
    request_id = ran[0].request_id if ran else None
    if request_id:
        evidence.invocation = fetch_naming(aws, config, start_ms, request_id)
    return evidence


def _check_sqs(ev: _Evidence, blocked: str | None, ctx: Context) -> Check:
    """The handler's line ties the SNS MessageId to an SQS messageId."""
    if ev.records:
        r = (ev.done or ev.records)[0]
        via = f"SNS message {r.sns_message_id} arrived as " if r.sns_message_id else ""
        return Check("sqs", True, f"{via}SQS message {r.sqs_message_id} (attempt {r.attempt or '?'})")
    if blocked:
        waiting = queue_depth(ctx)
        return Check("sqs", None, f"unproven: {waiting} message(s) in {ctx.config.queue_name}; {blocked}")
    if ev.published:
        return Check(
            "sqs",
            False,
            f"no handler log line mentions SNS message {ev.published.message_id}",
            "the message has not reached the function: check `orderflow status` (queue depth, mapping state)",
        )
    return Check("sqs", None, UNCHECKED)


def _invocation_check(ev: _Evidence, record: HandlerRecord) -> Check:
    """START and END around the handler's line for this order."""
    request_id, outcome = record.request_id or "", record.outcome
    lines = [e.message for e in ev.invocation]
    started = any(m.startswith(f"START RequestId: {request_id}") for m in lines)
    ended = any(m.startswith(f"END RequestId: {request_id}") for m in lines)
    report = next((m for m in lines if m.startswith(f"REPORT RequestId: {request_id}")), "")
    duration = report.split("Duration: ", 1)[1].split("\t", 1)[0] if "Duration: " in report else "?"
    if started and ended:
        return Check("lambda", True, f"invocation {request_id}: START … END, outcome {outcome}, {duration}")
    return Check("lambda", False, f"outcome {outcome} but no START/END for {request_id}")


def _static_failure(hop: str, found: list[permissions.Problem]) -> Check:
    return Check(hop, False, "; ".join(p.evidence for p in found), found[0].hint)


def _check_lambda(
    ev: _Evidence, not_consumed: str | None, static: list[permissions.Problem], logs_blocked: str | None
) -> Check:
    """An invocation processed it — and nothing in the function or its role keeps the next one from working."""
    if static:
        return _static_failure("lambda", static)
    if ev.done or ev.refused_writes:
        return _invocation_check(ev, (ev.done or ev.refused_writes)[0])
    if ev.rejected:
        r = ev.rejected[-1]
        return Check(
            "lambda",
            False,
            f"the handler rejected it ({r.outcome}, attempt {r.attempt or '?'}): {r.reason or ''}",
            "it is retried and moves to the DLQ after maxReceiveCount (`orderflow dlq show`)",
        )
    if not_consumed:
        return Check("lambda", False, not_consumed, "run `orderflow up` to create or enable the mapping")
    if logs_blocked:
        return Check("lambda", None, f"unproven: {logs_blocked}")
    if ev.published:
        return Check("lambda", False, "no invocation has processed it yet", "see `orderflow logs`")
    return Check("lambda", None, UNCHECKED)


def _check_dynamodb(ev: _Evidence, item: dict[str, Any] | None, table: str, static: list[permissions.Problem]) -> Check:
    """The item, by consistent read, equals what was published."""
    if item is None:
        if static:
            return _static_failure("dynamodb", static)
        if ev.refused_writes:
            return Check("dynamodb", False, f"DynamoDB refused the write: {ev.refused_writes[-1].reason}")
        return Check("dynamodb", False, f"no item {ev.order_id!r} in table {table}", "was it published?")
    if ev.published is None:
        return Check(
            "dynamodb", True, f"item exists: status {item.get('status')!r}, timestamp {item.get('timestamp')!r}"
        )
    order = ev.published.order
    differing = [k for k, v in order.items() if item.get(k) != v]
    if differing:
        detail = ", ".join(f"{k}: {item.get(k)!r} != {order[k]!r}" for k in differing)
        return Check("dynamodb", False, f"item differs from the published order: {detail}")
    if static:
        return _static_failure("dynamodb", static)
    return Check("dynamodb", True, f"item matches the published order field by field ({len(order)} fields)")


def _check_logs(ev: _Evidence, log_group: str, static: list[permissions.Problem]) -> Check:
    """The invocation's lines are stored in the function's log group."""
    if static:
        return _static_failure("logs", static)
    if ev.invocation and (ev.done or ev.refused_writes):
        stored = ev.events + ev.invocation
        streams = ", ".join(sorted({e.stream for e in stored}))
        return Check("logs", True, f"{len(stored)} line(s) in {log_group} ({streams})")
    if ev.published or ev.records:
        return Check("logs", False, f"no invocation lines for this order in {log_group}")
    return Check("logs", None, UNCHECKED)


def by_hop(found: list[permissions.Problem]) -> dict[str, list[permissions.Problem]]:
    """The role's and the function's problems by hop: read once per verify, since waiting never mends them."""
    static: dict[str, list[permissions.Problem]] = {}
    for problem in found:
        static.setdefault(problem.hop, []).append(problem)
    return static


def _evaluate(
    ctx: Context, order_id: str, published: Published | None, static: dict[str, list[permissions.Problem]]
) -> list[Check]:
    with ctx.observation():
        wiring = check_wiring(ctx)
    ev = _gather(ctx.aws, ctx.config, order_id, published)
    # The mapping turns queued messages into invocations: when it is off, the Lambda hop is the broken one and the
    # SQS hop cannot be proven (only consuming a message would show it is ours). The SQS and Lambda hops are proven
    # from the function's log lines: when those cannot be written, they are unproven, and the Logs hop is broken.
    not_consumed = None if ev.records else mapping_problem(ctx)
    logs_blocked = "the function's log lines cannot reach CloudWatch Logs" if static.get("logs") else None
    lambda_blocked = static["lambda"][0].evidence if static.get("lambda") else None
    return [
        wiring,
        _check_sqs(ev, not_consumed or lambda_blocked or logs_blocked, ctx),
        _check_lambda(ev, not_consumed, static.get("lambda", []), logs_blocked),
        _check_dynamodb(
            ev, stored_order(ctx.aws, ctx.config, order_id), ctx.config.table_name, static.get("dynamodb", [])
        ),
        _check_logs(ev, ctx.config.log_group_name, static.get("logs", [])),
    ]


DLQ_READ_LIMIT = 1000


def _check_dlq(aws: Aws, config: StackConfig, order_id: str) -> Check:
    found = dlq.show(aws, config, limit=DLQ_READ_LIMIT)
    mine = [letter for letter in found.letters if letter.order_id == order_id]
    counted = f"{found.counted} counted in {config.dlq_name}"
    if mine:
        return Check(
            "dlq",
            False,
            f"{len(mine)} dead letter(s) for this order ({counted})",
            "see `orderflow dlq show`; fix the cause, then `orderflow dlq redrive`",
        )
    unread = f"; {found.unread} could not be read now (in flight or over {DLQ_READ_LIMIT})" if found.unread else ""
    return Check("dlq", True, f"{len(found.letters)} dead letter(s) read, none for this order ({counted}{unread})")


def verify(
    aws: Aws,
    config: StackConfig,
    order_id: str,
    published: Published | None,
    timeout: float = 60.0,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
    in_flight: bool = False,
) -> VerifyReport:
    """Prove each hop for one order. `in_flight`: the publish of it was interrupted during its call, so a missing
    order may never have been sent — said so, rather than blamed on a hop."""
    ctx = Context(aws=aws, config=config)
    started = clock()
    first_passed: dict[str, float] = {}
    delay = 0.1
    judged = permissions.judge(ctx)
    static = by_hop(judged.problems)
    warnings = advice.stack_warnings(ctx) + judged.notes
    while True:
        checks = _evaluate(ctx, order_id, published, static)
        now = clock() - started
        for check in checks:
            if check.passed:
                first_passed.setdefault(check.hop, now)
        settled = all(c.passed is not False for c in checks)
        if settled or now >= timeout:
            break
        sleep(min(delay, max(0.0, timeout - now)))
        delay = min(delay * 1.6, 2.0)
    checks.append(_check_dlq(aws, config, order_id))
    if checks[-1].passed:
        first_passed.setdefault("dlq", clock() - started)
    for check in checks:
        check.seconds = first_passed.get(check.hop)
        check.hint = repair_hint(config, check.hint)
        if in_flight and check.passed is False:
            check.evidence += f" ({IN_FLIGHT})"
    return VerifyReport(order_id, checks, clock() - started, in_flight, warnings)


IN_FLIGHT = "publish-test was interrupted while sending this order: it may never have been sent"


def repair_hint(config: StackConfig, hint: str) -> str:
    """`orderflow up` repairs a stack it built; one managed elsewhere is repaired where it is managed."""
    if not config.managed_by or "orderflow up" not in hint:
        return hint
    return f"fix it in {config.managed_by} (orderflow proves this stack; it does not change it)"
