"""`local start --realistic`, in-process: the embedded AWS's control plane on a clock this test moves by hand, so every
transition is seen at AWS's own durations (time scale 1.0) without waiting for any of them."""

from __future__ import annotations

import json
import time

import boto3
import botocore.exceptions
import pytest

from orderflow.local.realism.control_plane import DELAYS, ControlPlane, critical_path
from orderflow.local.realism.services import function_name
from orderflow.local.server.embedded import EmbeddedAws
from orderflow.provision.package import build_package
from orderflow.provision.policies import lambda_trust_policy

REGION = "eu-west-2"


class ManualClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture(scope="module")
def plane(clock) -> ControlPlane:
    return ControlPlane(1.0, clock=clock, background=False)


@pytest.fixture(scope="module")
def embedded(plane):
    with EmbeddedAws(runtime=False, control_plane=plane) as aws:
        yield aws


@pytest.fixture(scope="module")
def endpoint(embedded):
    return embedded.endpoint


@pytest.fixture
def advance(clock, plane):
    def move(delay: str, extra: float = 0.01) -> None:
        clock.now += DELAYS[delay].seconds + extra
        plane.run_due()

    return move


def client(endpoint, service):
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="admin",
        aws_secret_access_key="admin",
        config=botocore.config.Config(retries={"mode": "standard", "max_attempts": 1}),
    )


def refused(call, code: str) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as caught:
        call()
    assert caught.value.response["Error"]["Code"] == code, caught.value.response
    return caught.value.response["Error"]["Message"]


def role(endpoint, name: str) -> str:
    return client(endpoint, "iam").create_role(
        RoleName=name, AssumeRolePolicyDocument=json.dumps(lambda_trust_policy())
    )["Role"]["Arn"]


def test_the_delay_table_has_a_source_for_every_delay_and_the_critical_path_follows_it():
    assert all(d.seconds > 0 and d.source and d.what for d in DELAYS.values())
    # role assumable (10) -> function Active (3) -> mapping Enabled (15); the table (8) and the policies (10) overlap
    assert critical_path() == pytest.approx(28.0)
    assert critical_path(0.25) == pytest.approx(7.0)


def test_function_name_accepts_names_and_arns():
    assert function_name("F") == "F"
    assert function_name("arn:aws:lambda:eu-west-2:123456789012:function:F") == "F"
    assert function_name("arn:aws:lambda:eu-west-2:123456789012:function:F:live") == "F"


def test_a_new_role_is_not_assumable_by_lambda_until_iam_has_propagated_it(endpoint, advance):
    arn = role(endpoint, "fresh-role")
    create = lambda: client(endpoint, "lambda").create_function(  # noqa: E731
        FunctionName="fresh-fn",
        Runtime="python3.13",
        Role=arn,
        Handler="index.lambda_handler",
        Code={"ZipFile": build_package().zip_bytes},
    )
    message = refused(create, "InvalidParameterValueException")
    assert message == "The role defined for the function cannot be assumed by Lambda."
    advance("role_assumable")
    assert create()["State"] == "Pending"


def test_a_function_is_pending_then_active_and_refuses_updates_meanwhile(endpoint, advance):
    arn = role(endpoint, "pending-role")
    advance("role_assumable")
    lam = client(endpoint, "lambda")
    lam.create_function(
        FunctionName="pending-fn",
        Runtime="python3.13",
        Role=arn,
        Handler="index.lambda_handler",
        Code={"ZipFile": build_package().zip_bytes},
    )
    config = lam.get_function(FunctionName="pending-fn")["Configuration"]
    assert (config["State"], config["StateReasonCode"]) == ("Pending", "Creating")
    message = refused(
        lambda: lam.update_function_configuration(FunctionName="pending-fn", Timeout=9), "ResourceConflictException"
    )
    assert "An update is in progress for resource" in message
    advance("function_active")
    assert lam.get_function_configuration(FunctionName="pending-fn")["State"] == "Active"
    lam.update_function_configuration(FunctionName="pending-fn", Timeout=9)
    assert lam.get_function_configuration(FunctionName="pending-fn")["LastUpdateStatus"] == "InProgress"
    refused(
        lambda: lam.update_function_configuration(FunctionName="pending-fn", Timeout=10), "ResourceConflictException"
    )
    advance("function_updated")
    config = lam.get_function_configuration(FunctionName="pending-fn")
    assert (config["LastUpdateStatus"], config["Timeout"]) == ("Successful", 9)


def test_a_table_is_creating_then_active_and_deleting_then_gone(endpoint, advance):
    ddb = client(endpoint, "dynamodb")
    created = ddb.create_table(
        TableName="T1",
        KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    assert created["TableDescription"]["TableStatus"] == "CREATING"
    refused(lambda: ddb.put_item(TableName="T1", Item={"k": {"S": "1"}}), "ResourceNotFoundException")
    assert "being created" in refused(lambda: ddb.delete_table(TableName="T1"), "ResourceInUseException")
    advance("table_active")
    assert ddb.describe_table(TableName="T1")["Table"]["TableStatus"] == "ACTIVE"
    assert ddb.delete_table(TableName="T1")["TableDescription"]["TableStatus"] == "DELETING"
    assert ddb.describe_table(TableName="T1")["Table"]["TableStatus"] == "DELETING"
    refused(lambda: ddb.delete_table(TableName="T1"), "ResourceInUseException")
    advance("table_deleted")
    refused(lambda: ddb.describe_table(TableName="T1"), "ResourceNotFoundException")


def test_a_deleted_queue_answers_for_a_while_and_blocks_its_name_for_60_seconds(endpoint, advance, clock):
    sqs = client(endpoint, "sqs")
    url = sqs.create_queue(QueueName="Q1")["QueueUrl"]
    sqs.delete_queue(QueueUrl=url)
    assert sqs.get_queue_url(QueueName="Q1")["QueueUrl"] == url  # still answers…
    refused(lambda: sqs.get_queue_attributes(QueueUrl=url), "AWS.SimpleQueueService.NonExistentQueue")  # …but is gone
    advance("queue_url_after_delete")
    refused(lambda: sqs.get_queue_url(QueueName="Q1"), "AWS.SimpleQueueService.NonExistentQueue")
    message = refused(lambda: sqs.create_queue(QueueName="Q1"), "AWS.SimpleQueueService.QueueDeletedRecently")
    assert "60 seconds" in message
    clock.now += DELAYS["queue_name_blocked"].seconds
    assert sqs.create_queue(QueueName="Q1")["QueueUrl"] == url


def test_a_mapping_is_creating_then_enabled_and_deleting_blocks_a_new_one(endpoint, advance):
    arn = role(endpoint, "mapping-role")
    poll = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
                "Resource": "*",
            }
        ],
    }
    client(endpoint, "iam").put_role_policy(RoleName="mapping-role", PolicyName="poll", PolicyDocument=json.dumps(poll))
    advance("role_assumable")
    lam, sqs = client(endpoint, "lambda"), client(endpoint, "sqs")
    queue = sqs.create_queue(QueueName="MQ", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    lam.create_function(
        FunctionName="mapped-fn",
        Runtime="python3.13",
        Role=arn,
        Handler="index.lambda_handler",
        Code={"ZipFile": build_package().zip_bytes},
    )
    advance("function_active")
    create = lambda: lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName="mapped-fn")  # noqa: E731
    mapping = create()
    assert mapping["State"] == "Creating"
    assert lam.get_event_source_mapping(UUID=mapping["UUID"])["State"] == "Creating"
    refused(lambda: lam.delete_event_source_mapping(UUID=mapping["UUID"]), "ResourceInUseException")
    refused(lambda: lam.update_event_source_mapping(UUID=mapping["UUID"], BatchSize=5), "ResourceInUseException")
    advance("mapping_enabled")
    assert lam.get_event_source_mapping(UUID=mapping["UUID"])["State"] == "Enabled"
    assert lam.delete_event_source_mapping(UUID=mapping["UUID"])["State"] == "Deleting"
    assert lam.get_event_source_mapping(UUID=mapping["UUID"])["State"] == "Deleting"
    assert "already exists" in refused(create, "ResourceConflictException")
    advance("mapping_deleted")
    refused(lambda: lam.get_event_source_mapping(UUID=mapping["UUID"]), "ResourceNotFoundException")
    assert create()["State"] == "Creating"


def test_a_new_inline_policy_applies_only_once_propagated(embedded, endpoint, advance):
    arn = role(endpoint, "policy-role")
    advance("role_assumable")
    roles = embedded.roles  # what the server's enforcement decides with
    document = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Action": "sqs:ReceiveMessage", "Resource": "*"}],
    }
    client(endpoint, "iam").put_role_policy(RoleName="policy-role", PolicyName="p", PolicyDocument=json.dumps(document))
    assert roles.decide(arn, "sqs:ReceiveMessage", "arn:aws:sqs:eu-west-2:123456789012:q") == "implicit-deny"
    advance("policy_applies")
    assert roles.decide(arn, "sqs:ReceiveMessage", "arn:aws:sqs:eu-west-2:123456789012:q") == "allow"
    client(endpoint, "iam").delete_role_policy(RoleName="policy-role", PolicyName="p")
    assert roles.decide(arn, "sqs:ReceiveMessage", "arn:aws:sqs:eu-west-2:123456789012:q") == "allow"  # still
    advance("policy_applies")
    assert roles.decide(arn, "sqs:ReceiveMessage", "arn:aws:sqs:eu-west-2:123456789012:q") == "implicit-deny"


def test_a_short_poll_can_come_back_empty_while_messages_wait_and_a_long_poll_cannot(endpoint):
    sqs = client(endpoint, "sqs")
    url = sqs.create_queue(QueueName="PollQ")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="hello")
    short = [len(sqs.receive_message(QueueUrl=url, VisibilityTimeout=0).get("Messages", [])) for _ in range(40)]
    assert 0 in short and 1 in short
    long = [
        len(sqs.receive_message(QueueUrl=url, VisibilityTimeout=0, WaitTimeSeconds=1).get("Messages", []))
        for _ in range(10)
    ]
    assert long == [1] * 10


def test_log_events_are_visible_only_after_ingestion(endpoint, advance):
    logs = client(endpoint, "logs")
    logs.create_log_group(logGroupName="/realistic")
    logs.create_log_stream(logGroupName="/realistic", logStreamName="s")
    logs.put_log_events(
        logGroupName="/realistic", logStreamName="s", logEvents=[{"timestamp": int(time.time() * 1000), "message": "m"}]
    )
    assert logs.filter_log_events(logGroupName="/realistic")["events"] == []
    assert logs.get_log_events(logGroupName="/realistic", logStreamName="s")["events"] == []
    advance("log_ingestion")  # on the plane's clock, like every other delay
    assert [e["message"] for e in logs.filter_log_events(logGroupName="/realistic")["events"]] == ["m"]
    assert [e["message"] for e in logs.get_log_events(logGroupName="/realistic", logStreamName="s")["events"]] == ["m"]


def test_a_changed_queue_policy_applies_to_deliveries_only_once_propagated(endpoint, advance):
    from orderflow.provision.policies import topic_send_statement, with_statement

    sns, sqs = client(endpoint, "sns"), client(endpoint, "sqs")
    topic = sns.create_topic(Name="PolicyTopic")["TopicArn"]
    url = sqs.create_queue(QueueName="PolicyQ")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
    policy = with_statement(None, topic_send_statement(queue_arn, topic))
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"Policy": json.dumps(policy)})

    def depth() -> int:
        return int(
            sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]["ApproximateNumberOfMessages"]
        )

    sns.publish(TopicArn=topic, Message="before")
    assert depth() == 0  # dropped: the old (empty) policy still applies
    advance("queue_policy_applies")
    sns.publish(TopicArn=topic, Message="after")
    assert depth() == 1


def test_docs_fidelity_lists_every_simulated_delay_as_the_code_has_it():
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "fidelity.md").read_text()
    for delay in DELAYS.values():
        assert f"| `{delay.name}` | {delay.seconds:g} s | {delay.what} |" in page, delay.name


def _function(endpoint, advance, name: str) -> None:
    arn = role(endpoint, f"{name}-role")
    advance("role_assumable")
    client(endpoint, "lambda").create_function(
        FunctionName=name, Runtime="python3.13", Role=arn, Handler="index.lambda_handler",
        Code={"ZipFile": build_package().zip_bytes},
    )  # fmt: skip
    advance("function_active")


def test_an_idle_function_is_inactive_an_invoke_fails_and_reactivates_it_an_update_reactivates_it(endpoint, advance):
    lam = client(endpoint, "lambda")
    _function(endpoint, advance, "idle-fn")
    assert lam.get_function_configuration(FunctionName="idle-fn")["State"] == "Active"
    advance("function_inactive")
    config = lam.get_function_configuration(FunctionName="idle-fn")
    assert (config["State"], config["StateReasonCode"]) == ("Inactive", "Idle")
    assert "state: Inactive" in refused(lambda: lam.invoke(FunctionName="idle-fn"), "ResourceConflictException")
    assert lam.get_function_configuration(FunctionName="idle-fn")["State"] == "Pending"  # being reactivated
    advance("function_active")
    assert lam.get_function_configuration(FunctionName="idle-fn")["State"] == "Active"
    advance("function_inactive")
    lam.update_function_configuration(FunctionName="idle-fn", Timeout=7)  # allowed while Inactive
    config = lam.get_function_configuration(FunctionName="idle-fn")
    assert (config["State"], config["LastUpdateStatus"]) == ("Active", "InProgress")


def test_a_mapping_switched_off_or_on_is_disabling_or_enabling_and_a_table_update_still_serves_items(endpoint, advance):
    ddb = client(endpoint, "dynamodb")
    ddb.create_table(TableName="T2", KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}], BillingMode="PROVISIONED",
                     ProvisionedThroughput={"ReadCapacityUnits": 1, "WriteCapacityUnits": 1})  # fmt: skip
    advance("table_active")
    assert ddb.update_table(TableName="T2", BillingMode="PAY_PER_REQUEST")["TableDescription"]["TableStatus"] == (
        "UPDATING"
    )
    ddb.put_item(TableName="T2", Item={"k": {"S": "1"}})  # DynamoDB API Reference: reads and writes go on
    assert "being updated" in refused(lambda: ddb.delete_table(TableName="T2"), "ResourceInUseException")
    advance("table_updated")
    assert ddb.describe_table(TableName="T2")["Table"]["TableStatus"] == "ACTIVE"

    uuid, lam = _mapping(endpoint, advance, "switch")
    assert lam.update_event_source_mapping(UUID=uuid, Enabled=False)["State"] == "Disabling"
    advance("mapping_updated")
    assert lam.get_event_source_mapping(UUID=uuid)["State"] == "Disabled"
    assert lam.update_event_source_mapping(UUID=uuid, Enabled=True)["State"] == "Enabling"
    advance("mapping_updated")
    assert lam.update_event_source_mapping(UUID=uuid, BatchSize=3)["State"] == "Updating"


def _mapping(endpoint, advance, name: str, lose_permissions: bool = False) -> tuple[str, object]:
    """A mapping of a new queue to a new function; `lose_permissions`: its role's poll policy is deleted while the
    mapping is Creating."""
    _function(endpoint, advance, f"{name}-fn")
    poll = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Resource": "*",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"]}]}  # fmt: skip
    iam = client(endpoint, "iam")
    iam.put_role_policy(RoleName=f"{name}-fn-role", PolicyName="poll", PolicyDocument=json.dumps(poll))
    advance("policy_applies")
    lam, sqs = client(endpoint, "lambda"), client(endpoint, "sqs")
    queue = sqs.create_queue(QueueName=f"{name}-q", Attributes={"VisibilityTimeout": "60"})["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    uuid = lam.create_event_source_mapping(EventSourceArn=queue_arn, FunctionName=f"{name}-fn")["UUID"]
    if lose_permissions:
        iam.delete_role_policy(RoleName=f"{name}-fn-role", PolicyName="poll")
        advance("policy_applies")
    advance("mapping_enabled")
    return uuid, lam


def test_a_mapping_whose_role_loses_its_permissions_while_creating_ends_disabled_naming_the_problem(endpoint, advance):
    uuid, lam = _mapping(endpoint, advance, "lost", lose_permissions=True)
    found = lam.get_event_source_mapping(UUID=uuid)
    assert found["State"] == "Disabled"
    assert found["StateTransitionReason"] == (
        "PROBLEM: The function execution role does not have permissions to call ReceiveMessage on SQS."
    )


def test_a_wait_that_meets_a_state_that_will_not_pass_fails_at_once_naming_it(endpoint, advance):
    from orderflow.aws import connect
    from orderflow.errors import AwsError
    from orderflow.local.server import state
    from orderflow.provision.base import Context
    from orderflow.provision.resources.function import Function
    from orderflow.provision.resources.trigger import Trigger
    from orderflow.provision.waits import StepRun, wait
    from orderflow.stack import StackConfig

    aws = connect(region=REGION, endpoint_url=endpoint, credentials=state.LOCAL_CREDENTIALS)
    slept: list[float] = []
    ctx = Context(aws=aws, config=StackConfig("waits"), sleep=slept.append, clock=lambda: 0.0)
    _function(endpoint, advance, ctx.config.function_name)
    advance("function_inactive")
    active = Function()._wait(ctx, "function_active_v2", "to be Active")
    with pytest.raises(AwsError, match=r"to be Active did not happen: it is Inactive: The function is inactive"):
        wait(StepRun(ctx, Function()), active)
    assert slept == []  # at once: not one poll interval spent

    uuid, _ = _mapping(endpoint, advance, "waited", lose_permissions=True)  # ends Disabled
    enabled = Trigger()._settled(ctx, uuid, enabled=True)
    with pytest.raises(
        AwsError, match=r"to be Enabled did not happen: it is Disabled: PROBLEM: The function execution"
    ):
        wait(StepRun(ctx, Trigger()), enabled)
    assert slept == []


def test_the_runtime_runs_the_previous_code_until_the_update_is_successful(tmp_path):
    """Lambda function states, "Function states during updates": invocations run the previous code and
    configuration while LastUpdateStatus is InProgress."""
    import base64
    import hashlib
    import io
    import zipfile

    from orderflow.local.runtime.functions import FunctionHost

    def package(text: str) -> tuple[bytes, str]:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as z:
            z.writestr("index.py", text)
        data = buffer.getvalue()
        return data, base64.b64encode(hashlib.sha256(data).digest()).decode()

    old, new = package("VERSION = 1\n"), package("VERSION = 2\n")
    arn = "arn:aws:lambda:eu-west-2:111122223333:function:fn"
    answer = {"CodeSha256": old[1], "LastUpdateStatus": "Successful"}

    class Lambda:
        def get_function(self, FunctionName):
            return {"Configuration": {"FunctionName": "fn", "FunctionArn": arn, "Handler": "index.h",
                                      "Role": "arn:aws:iam::111122223333:role/r", **answer}}  # fmt: skip

    code = {old[1]: old[0], new[1]: new[0]}
    host = FunctionHost("http://x", lambda a: code[answer["CodeSha256"]], lambda region: Lambda(), None, tmp_path,
                        None)  # type: ignore[arg-type]  # fmt: skip
    assert (host.spec(arn).code_dir / "index.py").read_text() == "VERSION = 1\n"
    answer.update(CodeSha256=new[1], LastUpdateStatus="InProgress")
    host.invalidate()
    assert (host.spec(arn).code_dir / "index.py").read_text() == "VERSION = 1\n"  # still the previous code
    answer.update(LastUpdateStatus="Successful")
    host.invalidate()
    assert (host.spec(arn).code_dir / "index.py").read_text() == "VERSION = 2\n"
