"""Smaller flow and plumbing pieces: following logs, error translation, the embedded AWS's missing extra."""

from __future__ import annotations

import builtins
import json
import time

import pytest
from botocore.exceptions import ClientError

from orderflow.aws import aws_errors
from orderflow.errors import OrderflowError
from orderflow.flow.logs import follow, parse_since, render
from orderflow.provision import operations


def _put(ctx, stream, *events):
    ctx.client("logs").put_log_events(
        logGroupName=ctx.config.log_group_name,
        logStreamName=stream,
        logEvents=[{"timestamp": ts, "message": m} for ts, m in events],
    )


def test_follow_yields_each_event_once_even_when_older_lines_arrive_late(ctx):
    operations.converge(ctx)
    logs = ctx.client("logs")
    for stream in ("fast", "slow"):
        logs.create_log_stream(logGroupName=ctx.config.log_group_name, logStreamName=stream)
    base = int(time.time() * 1000) - 60_000  # CloudWatch refuses events far from now
    _put(ctx, "fast", (base, "START a"), (base + 10, "END a"))
    batches = follow(ctx.aws, ctx.config, base - 1000, sleep=lambda _s: None)
    assert [e.message for e in next(batches)] == ["START a", "END a"]
    _put(ctx, "slow", (base + 5, "a slow invocation's line, delivered late"))
    _put(ctx, "fast", (base + 20, "START b"))
    assert [e.message for e in next(batches)] == ["a slow invocation's line, delivered late", "START b"]
    assert next(batches) == []


def test_handler_lines_render_readably():
    from orderflow.flow.logs import LogEvent

    line = '{"event": "order", "outcome": "invalid", "sqsMessageId": "m1", "attempt": "2", "reason": "bad"}'
    assert render(LogEvent("1", 0, "s", line)) == "INVALID <no orderId> sqs=m1 attempt=2 — bad"
    assert (
        render(LogEvent("2", 0, "s", "START RequestId: r Version: $LATEST\n")) == "START RequestId: r Version: $LATEST"
    )


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("10m", 600), ("2h", 7200), ("1d", 86400)])
def test_since_durations(text, seconds):
    assert parse_since(text) == seconds


def test_a_bad_since_is_a_clear_error():
    with pytest.raises(OrderflowError, match="not a duration"):
        parse_since("ten minutes")


def test_access_denied_becomes_one_line():
    error = ClientError({"Error": {"Code": "AccessDenied", "Message": "not allowed: iam:CreateRole"}}, "CreateRole")
    with (
        pytest.raises(OrderflowError, match=r"^Access denied for CreateRole: not allowed: iam:CreateRole$"),
        aws_errors(),
    ):
        raise error


def test_local_start_without_moto_names_the_extra(monkeypatch):
    from orderflow.local.server import control

    real_import = builtins.__import__

    def no_moto(name, *args, **kwargs):
        if name.startswith("moto"):
            raise ImportError(name=name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_moto)
    with pytest.raises(OrderflowError, match=r"pip install 'orderflow\[local\]'"):
        control.start(port=1)


def test_the_handlers_log_line_is_read_back_as_the_handler_wrote_it(capsys):
    """The handler's fields and HandlerRecord's attributes come from one list: a line round-trips."""
    from orderflow.flow.logs import HandlerRecord
    from orderflow.lambda_code import index

    index._log(
        outcome="invalid",
        orderId="o-1",
        sqsMessageId="m-1",
        snsMessageId="s-1",
        attempt="3",
        sentAt="1700000000000",
        reason="quantity must be an integer ≥ 1",
        requestId="r-1",
    )
    line = capsys.readouterr().out.strip()
    record = HandlerRecord.parse(line)
    assert record == HandlerRecord("invalid", "o-1", "m-1", "s-1", 3, 1_700_000_000_000, record.reason, "r-1")
    assert record.to_document() == json.loads(line) | {"attempt": 3, "sentAt": 1_700_000_000_000}
    assert HandlerRecord.parse('{"event": "init", "outcome": "x"}') is None
    assert HandlerRecord.parse("START RequestId: r") is None
    with pytest.raises(TypeError):
        index._log(outcom="typo")  # a field the reader would not know
