"""The order handler against moto, with events built from real SNS -> SQS deliveries."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from decimal import Decimal
from pathlib import Path

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from moto import mock_aws

from orderflow.lambda_code import index
from orderflow.local.runtime.events import sqs_event
from orderflow.provision.policies import topic_send_statement
from tests.conftest import _HttpStatus

REGION = "ap-southeast-2"
SAMPLE = {
    "orderId": "O1234",
    "userId": "U123",
    "itemName": "Laptop",
    "quantity": 1,
    "status": "new",
    "timestamp": "2025-05-03T12:00:00Z",
}


class Context:
    aws_request_id = "req-1"


class Pipeline:
    """A real topic -> queue subscription in moto; delivers bodies as Lambda would receive them."""

    def __init__(self) -> None:
        self.ddb = boto3.resource("dynamodb", region_name=REGION)
        self.table = self.ddb.create_table(
            TableName="Orders",
            KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.sns = boto3.client("sns", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.topic = self.sns.create_topic(Name="OrderTopic")["TopicArn"]
        self.queue_url = self.sqs.create_queue(QueueName="OrderQueue")["QueueUrl"]
        self.queue_arn = self.sqs.get_queue_attributes(QueueUrl=self.queue_url, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        # As on AWS, SNS may deliver only with the queue policy that lets the topic send (the embedded AWS's patched
        # moto, which may share this test process, enforces it).
        policy = {"Version": "2012-10-17", "Statement": [topic_send_statement(self.queue_arn, self.topic)]}
        self.sqs.set_queue_attributes(QueueUrl=self.queue_url, Attributes={"Policy": json.dumps(policy)})
        self.sns.subscribe(TopicArn=self.topic, Protocol="sqs", Endpoint=self.queue_arn)

    def publish(self, message: str) -> None:
        self.sns.publish(TopicArn=self.topic, Message=message)

    def send_raw(self, body: str) -> None:
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=body)

    def event(self) -> dict:
        messages = []
        while batch := self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=10, AttributeNames=["All"], MessageAttributeNames=["All"]
        ).get("Messages", []):
            messages += batch
        return sqs_event(messages, self.queue_arn, REGION)

    def item(self, order_id: str) -> dict | None:
        return self.table.get_item(Key={"orderId": order_id}, ConsistentRead=True).get("Item")

    def count(self) -> int:
        return self.table.scan(Select="COUNT")["Count"]


@pytest.fixture
def pipeline(monkeypatch):
    monkeypatch.setenv("TABLE_NAME", "Orders")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    index._TABLES.clear()
    with mock_aws():
        yield Pipeline()
    index._TABLES.clear()


def log_lines(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]


def test_the_guides_sample_order_is_written_with_every_field(pipeline, capsys):
    pipeline.publish(json.dumps(SAMPLE))
    event = pipeline.event()
    assert json.loads(event["Records"][0]["body"])["Type"] == "Notification"
    assert index.lambda_handler(event, Context()) == {"batchItemFailures": []}
    item = pipeline.item("O1234")
    assert item == {**SAMPLE, "quantity": Decimal(1), "timestampUtc": "2025-05-03T12:00:00.000000Z"}
    [line] = log_lines(capsys)
    envelope = json.loads(event["Records"][0]["body"])
    assert line == {
        "event": "order",
        "outcome": "written",
        "orderId": "O1234",
        "sqsMessageId": event["Records"][0]["messageId"],
        "snsMessageId": envelope["MessageId"],
        "attempt": "1",
        "sentAt": event["Records"][0]["attributes"]["SentTimestamp"],  # when SQS received it: `trace` shows it
        "requestId": "req-1",
    }


INVALID_BODIES = {
    "not json": "this is not json",
    "json array": json.dumps([SAMPLE]),
    "empty object": "{}",
    "missing orderId": json.dumps({k: v for k, v in SAMPLE.items() if k != "orderId"}),
    "empty orderId": json.dumps(SAMPLE | {"orderId": "  "}),
    "numeric orderId": json.dumps(SAMPLE | {"orderId": 7}),
    "quantity zero": json.dumps(SAMPLE | {"quantity": 0}),
    "quantity negative": json.dumps(SAMPLE | {"quantity": -2}),
    "quantity string": json.dumps(SAMPLE | {"quantity": "1"}),
    "quantity float": json.dumps(SAMPLE | {"quantity": 1.5}),
    "quantity bool": json.dumps(SAMPLE | {"quantity": True}),
    "quantity NaN": json.dumps(SAMPLE).replace('"quantity": 1', '"quantity": NaN'),
    "bad timestamp": json.dumps(SAMPLE | {"timestamp": "yesterday"}),
    "missing timestamp": json.dumps({k: v for k, v in SAMPLE.items() if k != "timestamp"}),
    "userId number": json.dumps(SAMPLE | {"userId": 5}),
    "itemName null": json.dumps(SAMPLE | {"itemName": None}),
    "status list": json.dumps(SAMPLE | {"status": ["new"]}),
    "empty nested field name": json.dumps(SAMPLE | {"extra": {"": True}}),
    "lone surrogate escape": json.dumps(SAMPLE).replace('"Laptop"', '"Lap\\udc80top"'),
}


def test_a_mixed_batch_reports_exactly_the_invalid_records(pipeline, capsys):
    good_ids = [f"good-{i}" for i in range(3)]
    for order_id in good_ids:
        pipeline.publish(json.dumps(SAMPLE | {"orderId": order_id}))
    for body in INVALID_BODIES.values():
        pipeline.publish(body)
    pipeline.send_raw(json.dumps({"Type": "Notification", "TopicArn": pipeline.topic, "MessageId": "m"}))
    event = pipeline.event()
    assert len(event["Records"]) == 3 + len(INVALID_BODIES) + 1

    result = index.lambda_handler(event, Context())

    body_of = {r["messageId"]: r["body"] for r in event["Records"]}
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    succeeded = set(body_of) - failed
    assert len(failed) == len(INVALID_BODIES) + 1
    assert {json.loads(json.loads(body_of[m])["Message"])["orderId"] for m in succeeded} == set(good_ids)
    assert pipeline.count() == 3
    lines = log_lines(capsys)
    assert sorted(line["outcome"] for line in lines) == ["invalid"] * len(failed) + ["written"] * 3
    assert all(line["reason"] for line in lines if line["outcome"] == "invalid")
    assert {line["sqsMessageId"] for line in lines if line["outcome"] == "invalid"} == failed


def test_a_duplicate_delivery_writes_once_and_succeeds(pipeline, capsys):
    pipeline.publish(json.dumps(SAMPLE))
    event = pipeline.event()
    assert index.lambda_handler(event, Context()) == {"batchItemFailures": []}
    assert index.lambda_handler(event, Context()) == {"batchItemFailures": []}
    assert pipeline.count() == 1
    assert [line["outcome"] for line in log_lines(capsys)] == ["written", "written"]


def test_an_older_update_never_overwrites_a_newer_one(pipeline, capsys):
    newer = SAMPLE | {"status": "shipped", "timestamp": "2025-05-03T14:00:00+02:00"}  # 12:00Z
    older = SAMPLE | {"status": "new", "timestamp": "2025-05-03T11:59:59Z"}
    pipeline.publish(json.dumps(newer))
    index.lambda_handler(pipeline.event(), Context())
    pipeline.publish(json.dumps(older))
    assert index.lambda_handler(pipeline.event(), Context()) == {"batchItemFailures": []}
    assert pipeline.item("O1234")["status"] == "shipped"
    assert [line["outcome"] for line in log_lines(capsys)] == ["written", "stale"]

    newest = SAMPLE | {"status": "delivered", "timestamp": "2025-05-04T00:00:00Z"}
    pipeline.publish(json.dumps(newest))
    index.lambda_handler(pipeline.event(), Context())
    assert pipeline.item("O1234")["status"] == "delivered"


def test_a_raw_delivery_body_is_accepted(pipeline, capsys):
    pipeline.send_raw(json.dumps(SAMPLE | {"giftWrap": True, "price": 999.99}))
    assert index.lambda_handler(pipeline.event(), Context()) == {"batchItemFailures": []}
    item = pipeline.item("O1234")
    assert item["giftWrap"] is True and item["price"] == Decimal("999.99")
    [line] = log_lines(capsys)
    assert line["outcome"] == "written" and "snsMessageId" not in line


def test_a_dynamodb_failure_fails_only_the_affected_record(pipeline, capsys):
    for order_id in ("ok-1", "throttled", "ok-2"):
        pipeline.publish(json.dumps(SAMPLE | {"orderId": order_id}))
    event = pipeline.event()
    client = index._table().meta.client

    def throttle(params, **_):
        if json.loads(params["body"])["Item"]["orderId"] == {"S": "throttled"}:
            error = {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}
            return _HttpStatus(400), {"Error": error, "ResponseMetadata": {}}
        return None

    client.meta.events.register("before-call.dynamodb.PutItem", throttle)
    result = index.lambda_handler(event, Context())
    throttled_id = next(r["messageId"] for r in event["Records"] if "throttled" in r["body"])
    assert result == {"batchItemFailures": [{"itemIdentifier": throttled_id}]}
    assert pipeline.item("ok-1") and pipeline.item("ok-2") and pipeline.item("throttled") is None
    error_line = next(line for line in log_lines(capsys) if line["outcome"] == "error")
    assert error_line["orderId"] == "throttled" and "ProvisionedThroughputExceeded" in error_line["reason"]


def test_the_client_is_created_once_per_process(pipeline):
    pipeline.publish(json.dumps(SAMPLE))
    index.lambda_handler(pipeline.event(), Context())
    first = index._table()
    pipeline.publish(json.dumps(SAMPLE | {"orderId": "O2"}))
    index.lambda_handler(pipeline.event(), Context())
    assert index._table() is first


def _import_handler_as_lambda_does(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Import index.py alone, in a fresh interpreter, as a cold start would: report whether the client exists."""
    script = "import index; print(sorted(index._TABLES))"
    clean = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")} | {"AWS_CONFIG_FILE": os.devnull} | env
    return subprocess.run(
        [sys.executable, "-c", script], cwd=Path(index.__file__).parent, env=clean, capture_output=True, text=True
    )


def test_the_client_is_created_during_initialisation_not_in_the_first_invocation():
    lambda_env = {"TABLE_NAME": "Orders", "AWS_REGION": REGION, "AWS_DEFAULT_REGION": REGION}
    loaded = _import_handler_as_lambda_does(lambda_env)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.splitlines() == ["['Orders']"]


def test_a_client_that_cannot_be_created_at_initialisation_does_not_break_the_import():
    loaded = _import_handler_as_lambda_does({"TABLE_NAME": "Orders"})  # no region anywhere
    assert loaded.returncode == 0, loaded.stderr
    init_line, tables = loaded.stdout.splitlines()
    assert json.loads(init_line)["event"] == "init" and "region" in json.loads(init_line)["reason"]
    assert tables == "[]"


def test_a_record_without_message_id_fails_the_whole_batch(pipeline):
    with pytest.raises(ValueError, match="messageId"):
        index.lambda_handler({"Records": [{"body": json.dumps(SAMPLE)}]}, Context())
    assert pipeline.count() == 0


def test_an_empty_event_succeeds():
    assert index.lambda_handler({"Records": []}, Context()) == {"batchItemFailures": []}


@pytest.mark.parametrize(
    ("timestamp", "utc"),
    [
        ("2025-05-03T12:00:00Z", "2025-05-03T12:00:00.000000Z"),
        ("2025-05-03T14:30:00.5+02:00", "2025-05-03T12:30:00.500000Z"),
        ("2025-05-03T12:00:00", "2025-05-03T12:00:00.000000Z"),
        ("2025-05-03T12:00:00.1234567Z", "2025-05-03T12:00:00.123456Z"),
        ("2025-05-03T12:00:00.12+01:00", "2025-05-03T11:00:00.120000Z"),
    ],
)
def test_order_clock_normalises_to_fixed_width_utc(timestamp, utc):
    assert index.order_clock(timestamp) == utc


# --- properties -------------------------------------------------------------------------------------------------

text = st.text(max_size=20)
orders = st.fixed_dictionaries(
    {
        "orderId": st.one_of(st.text(min_size=1, max_size=30), st.integers(), st.none()),
        "userId": st.one_of(text, st.integers()),
        "itemName": text,
        "quantity": st.one_of(st.integers(min_value=-5, max_value=10**40), st.floats(allow_nan=False), text),
        "status": st.one_of(text, st.none()),
        "timestamp": st.one_of(
            st.datetimes().map(lambda d: d.isoformat()), st.datetimes().map(lambda d: d.isoformat() + "Z"), text
        ),
    },
    optional={
        "extra": st.recursive(
            st.none() | st.booleans() | text | st.integers(-(10**6), 10**6),
            lambda c: st.lists(c, max_size=3) | st.dictionaries(text, c, max_size=3),
            max_leaves=6,
        )
    },
)
bodies = st.one_of(
    orders.map(json.dumps),
    orders.map(
        lambda o: json.dumps({"Type": "Notification", "MessageId": "x", "TopicArn": "t", "Message": json.dumps(o)})
    ),
    st.text(max_size=200),
    st.binary(max_size=50).map(lambda b: b.decode("latin-1")),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(bodies, min_size=1, max_size=10))
def test_every_record_is_written_stale_or_reported_and_the_handler_never_raises(pipeline, batch, capsys):
    records = [{"messageId": str(uuid.uuid4()), "body": body, "attributes": {}} for body in batch]
    result = index.lambda_handler({"Records": records}, Context())
    failed = {f["itemIdentifier"] for f in result["batchItemFailures"]}
    assert failed <= {r["messageId"] for r in records}
    lines = {line["sqsMessageId"]: line for line in log_lines(capsys)}
    for record in records:
        line = lines[record["messageId"]]
        if record["messageId"] in failed:
            assert line["outcome"] in ("invalid", "error")
        else:
            assert line["outcome"] in ("written", "stale")
            assert pipeline.item(line["orderId"]) is not None


def test_a_number_written_with_trailing_zeros_past_38_digits_is_stored_exactly():
    """Found by the property test: DynamoDB trims trailing zeros, boto3 refuses the number untrimmed."""
    from decimal import Decimal

    from orderflow.lambda_code.index import _storable

    big = 119209289550781250000000000000000000000  # 39 digits, 17 significant
    stored = _storable({"n": big, "f": Decimal("1." + "0" * 38), "nested": [big], "flag": True, "q": 1})
    assert stored["n"] == big and len(stored["n"].as_tuple().digits) == 17
    assert stored["f"] == 1 and stored["nested"][0] == big
    assert stored["flag"] is True and stored["q"] == 1 and isinstance(stored["q"], int)


def test_an_envelope_whose_message_is_not_json_is_logged_with_its_sns_message_id(pipeline, capsys):
    """So `trace --message-id <SNS id>` finds a poison message too (the README says the SNS id works)."""
    pipeline.publish("not json at all")
    envelope = json.dumps({"Type": "Notification", "TopicArn": pipeline.topic, "MessageId": "sns-2"})
    pipeline.send_raw(envelope)  # an envelope without its Message
    event = pipeline.event()
    index.lambda_handler(event, Context())
    sns_ids = {json.loads(r["body"])["MessageId"] for r in event["Records"]}
    lines = log_lines(capsys)
    assert [line["outcome"] for line in lines] == ["invalid", "invalid"]
    assert {line["snsMessageId"] for line in lines} == sns_ids


def _interpreter_of(runtime: str) -> str | None:
    """This machine's Python for a Lambda runtime itself (never a stand-in), if it has one."""
    from orderflow.local.runtime.environment import interpreters

    for candidate in interpreters.candidates(runtime.removeprefix("python")):
        found = interpreters._probe(candidate, runtime)
        if found is not None and not found.stands_in:
            return found.executable
    return None


def _dynamodb(endpoint: str):
    return boto3.client(
        "dynamodb", region_name=REGION, endpoint_url=endpoint, aws_access_key_id="t", aws_secret_access_key="t"
    )


_ON_ANOTHER_PYTHON = """
import json, os, sys
import index
event = json.loads(sys.stdin.read())
print(json.dumps(index.lambda_handler(event, type("Context", (), {"aws_request_id": "req-on-" + sys.argv[1]})())))
"""


@pytest.mark.parametrize("runtime", __import__("orderflow.stack", fromlist=["x"]).SUPPORTED_RUNTIMES)
def test_the_handler_runs_on_every_runtime_up_offers(runtime, tmp_path):
    """`up --runtime X` deploys this handler to Lambda's Python X: it must load and judge a batch there. Run on that
    Python where this machine has it, against a moto server, with a boto3 that runs there."""
    from moto.server import ThreadedMotoServer

    from orderflow.local.runtime.environment import interpreters, launch

    executable = _interpreter_of(runtime)
    if executable is None:
        pytest.skip(f"no {runtime} on this machine")
    libraries = tmp_path / "libraries"
    table = f"Orders-{runtime}"  # the moto server shares this process's moto: a table of its own, deleted after
    if interpreters.too_old_for_bundled(runtime):
        # Lambda's own python3.9 bundles a boto3 of its time; this one needs a newer Python. The handler's own code
        # is what `up` deploys: it must load and judge the batch on 3.9 with any boto3 of that runtime's API.
        libraries.mkdir()
        (libraries / "boto3.py").write_text(
            "class _Table:\n"
            "    def put_item(self, **kwargs):\n        import json; print('PUT ' + json.dumps(kwargs, default=str))\n"
            "def resource(*a, **k):\n    return type('R', (), {'Table': lambda self, name: _Table()})()\n"
        )
        (libraries / "botocore").mkdir()
        (libraries / "botocore" / "__init__.py").write_text("")
        (libraries / "botocore" / "exceptions.py").write_text(
            "class BotoCoreError(Exception): pass\nclass ClientError(Exception): pass\n"
        )
        endpoint = None
    else:
        launch.linked_libraries(libraries, launch.BUNDLED, with_transport=False)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0)
        server.start()
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        _dynamodb(endpoint).create_table(
            TableName=table, KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}], BillingMode="PAY_PER_REQUEST",
        )  # fmt: skip
    try:
        good = {**SAMPLE, "orderId": f"on-{runtime}", "quantity": 3}
        event = sqs_event(
            [
                {"MessageId": "good", "ReceiptHandle": "g", "Body": json.dumps(good)},
                {"MessageId": "bad", "ReceiptHandle": "b", "Body": '{"orderId": 7}'},
            ],
            f"arn:aws:sqs:{REGION}:123456789012:OrderQueue",
            REGION,
        )
        env = {
            "PATH": os.environ["PATH"],
            "PYTHONPATH": os.pathsep.join([str(Path(index.__file__).parent), str(libraries)]),
            "TABLE_NAME": table,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "t",
            "AWS_SECRET_ACCESS_KEY": "t",
            **({"AWS_ENDPOINT_URL": endpoint} if endpoint else {}),
        }
        ran = subprocess.run(
            [executable, "-c", _ON_ANOTHER_PYTHON, runtime], input=json.dumps(event), env=env,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        answer = json.loads(ran.stdout.strip().splitlines()[-1])
        assert answer == {"batchItemFailures": [{"itemIdentifier": "bad"}]}, ran.stdout
        lines = [json.loads(line) for line in ran.stdout.splitlines() if line.startswith("{") and '"event"' in line]
        outcomes = [(line.get("orderId"), line["outcome"]) for line in lines]
        assert outcomes == [(good["orderId"], "written"), (None, "invalid")]
        if endpoint:
            item = _dynamodb(endpoint).get_item(TableName=table, Key={"orderId": {"S": good["orderId"]}})["Item"]
            assert item["quantity"] == {"N": "3"}
        else:
            assert f'PUT {{"Item": {{"orderId": "{good["orderId"]}"' in ran.stdout and '"quantity": 3' in ran.stdout
    finally:
        if endpoint:
            _dynamodb(endpoint).delete_table(TableName=table)
            server.stop()
