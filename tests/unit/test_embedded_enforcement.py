"""The embedded AWS's enforcement and moto patches, in-process: one embedded AWS (API only, no Lambda runtime)
that this test process drives with boto3 — an administrator's dummy keys, and a role session's keys from STS."""

from __future__ import annotations

import json

import boto3
import botocore.config
import botocore.exceptions
import pytest

from orderflow.arns import Arns
from orderflow.errors import OrderflowError
from orderflow.local.iam.actions import Need, needs
from orderflow.local.iam.mapping_rules import MappingRequest, refusal
from orderflow.local.patches import moto as moto_patches
from orderflow.local.server.embedded import EmbeddedAws
from orderflow.local.server.wire import SignedRequest
from orderflow.provision.policies import function_inline_policies, lambda_trust_policy, topic_send_statement
from orderflow.stack import StackConfig

REGION = "eu-west-2"


@pytest.fixture(scope="module")
def endpoint():
    with EmbeddedAws(runtime=False) as aws:
        yield aws.endpoint


def admin(endpoint, service):
    return boto3.client(
        service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id="admin", aws_secret_access_key="admin"
    )


@pytest.fixture
def stack(endpoint, request):
    """The stack's table, queues, topic and role with orderflow's own policies — as `up` makes them."""
    name = request.node.name[-40:].replace("[", "-").replace("]", "")
    config = StackConfig(name=f"s{abs(hash(name)) % 10**8}")
    account = admin(endpoint, "sts").get_caller_identity()["Account"]
    arns = Arns("aws", REGION, account)
    admin(endpoint, "dynamodb").create_table(
        TableName=config.table_name,
        KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    queue_url = admin(endpoint, "sqs").create_queue(QueueName=config.queue_name)["QueueUrl"]
    iam = admin(endpoint, "iam")
    iam.create_role(RoleName=config.role_name, AssumeRolePolicyDocument=json.dumps(lambda_trust_policy()))
    for policy, document in function_inline_policies(config, arns).items():
        iam.put_role_policy(RoleName=config.role_name, PolicyName=policy, PolicyDocument=json.dumps(document))
    return config, arns, queue_url


def as_role(endpoint, config, arns, service):
    issued = admin(endpoint, "sts").assume_role(
        RoleArn=arns.role(config.role_name), RoleSessionName=config.function_name
    )
    c = issued["Credentials"]
    return boto3.client(
        service,
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=c["AccessKeyId"],
        aws_secret_access_key=c["SecretAccessKey"],
        aws_session_token=c["SessionToken"],
    )


def item(order_id):
    return {"orderId": {"S": order_id}}


def test_a_role_session_may_do_what_its_policies_allow_on_the_exact_arn_and_nothing_else(endpoint, stack):
    config, arns, queue_url = stack
    ddb = as_role(endpoint, config, arns, "dynamodb")
    ddb.put_item(TableName=config.table_name, Item=item("allowed"))
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        ddb.get_item(TableName=config.table_name, Key=item("allowed"))
    error = refused.value.response["Error"]
    assert error["Code"] == "AccessDeniedException"
    assert error["Message"] == (
        f"User: arn:aws:sts::{arns.account}:assumed-role/{config.role_name}/{config.function_name} is not authorized "
        f"to perform: dynamodb:GetItem on resource: {arns.table(config.table_name)} because no identity-based policy "
        "allows the dynamodb:GetItem action"
    )
    sqs = as_role(endpoint, config, arns, "sqs")
    sqs.receive_message(QueueUrl=queue_url)
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        sqs.send_message(QueueUrl=queue_url, MessageBody="x")
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    # The administrator's dummy keys stay unrestricted; every identity may ask who it is.
    admin(endpoint, "dynamodb").get_item(TableName=config.table_name, Key=item("allowed"))
    assert ":assumed-role/" in as_role(endpoint, config, arns, "sts").get_caller_identity()["Arn"]


def test_a_policy_change_applies_to_the_very_next_call(endpoint, stack):
    config, arns, _ = stack
    ddb = as_role(endpoint, config, arns, "dynamodb")
    ddb.put_item(TableName=config.table_name, Item=item("before"))
    admin(endpoint, "iam").delete_role_policy(RoleName=config.role_name, PolicyName="DynamoPutItemPolicy")
    with pytest.raises(botocore.exceptions.ClientError, match="AccessDeniedException"):
        ddb.put_item(TableName=config.table_name, Item=item("after"))
    deny = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "dynamodb:*", "Resource": "*"}]}
    iam = admin(endpoint, "iam")
    iam.put_role_policy(
        RoleName=config.role_name,
        PolicyName="DynamoPutItemPolicy",
        PolicyDocument=json.dumps(function_inline_policies(config, arns)["DynamoPutItemPolicy"]),
    )
    ddb.put_item(TableName=config.table_name, Item=item("restored"))
    iam.put_role_policy(RoleName=config.role_name, PolicyName="Deny", PolicyDocument=json.dumps(deny))
    with pytest.raises(botocore.exceptions.ClientError, match="explicit deny"):
        ddb.put_item(TableName=config.table_name, Item=item("denied"))


def test_batch_calls_need_the_single_calls_permission(endpoint, stack):
    config, arns, queue_url = stack
    admin(endpoint, "sqs").send_message(QueueUrl=queue_url, MessageBody="m")
    sqs = as_role(endpoint, config, arns, "sqs")
    [message] = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"]
    entries = [{"Id": "0", "ReceiptHandle": message["ReceiptHandle"]}]
    assert sqs.delete_message_batch(QueueUrl=queue_url, Entries=entries)["Successful"]


def test_sns_delivers_to_a_queue_only_what_its_policy_allows(endpoint, stack, caplog):
    config, arns, queue_url = stack
    sns, sqs = admin(endpoint, "sns"), admin(endpoint, "sqs")
    topic = sns.create_topic(Name=config.topic_name)["TopicArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arns.queue(config.queue_name))
    sns.publish(TopicArn=topic, Message="refused")
    assert "SNS dropped message" in caplog.text and topic in caplog.text  # the daemon's log says why
    assert "Messages" not in sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=0)
    policy = {"Version": "2012-10-17", "Statement": [topic_send_statement(arns.queue(config.queue_name), topic)]}
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(policy)})
    sns.publish(TopicArn=topic, Message="delivered")
    [message] = sqs.receive_message(QueueUrl=queue_url, WaitTimeSeconds=1)["Messages"]
    assert json.loads(message["Body"])["Message"] == "delivered"
    # moto clears the policy on an unrelated SetQueueAttributes; AWS keeps it, and so does the embedded AWS.
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"VisibilityTimeout": "40"})
    assert "Policy" in sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]


def _function(endpoint, config, arns, timeout):
    lam = admin(endpoint, "lambda")
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", "def lambda_handler(event, context):\n    return None\n")
    lam.create_function(
        FunctionName=config.function_name,
        Runtime="python3.13",
        Role=arns.role(config.role_name),
        Handler="index.lambda_handler",
        Code={"ZipFile": buffer.getvalue()},
        Timeout=timeout,
    )
    return lam


def test_mapping_creation_follows_lambdas_rules(endpoint, stack):
    config, arns, queue_url = stack
    lam = _function(endpoint, config, arns, timeout=45)
    create = dict(EventSourceArn=arns.queue(config.queue_name), FunctionName=config.function_name)
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        lam.create_event_source_mapping(**create)
    assert refused.value.response["Error"]["Message"] == (
        "Queue visibility timeout: 30 seconds is less than Function timeout: 45 seconds"
    )
    with pytest.raises(botocore.exceptions.ClientError, match="greater than 0 if maximum batch size"):
        lam.create_event_source_mapping(**create, BatchSize=50)
    lam.update_function_configuration(FunctionName=config.function_name, Timeout=3)
    admin(endpoint, "iam").delete_role_policy(RoleName=config.role_name, PolicyName="SQSReceiveMessagePolicy")
    with pytest.raises(botocore.exceptions.ClientError, match="permissions to call ReceiveMessage on SQS"):
        lam.create_event_source_mapping(**create)
    admin(endpoint, "iam").put_role_policy(
        RoleName=config.role_name,
        PolicyName="SQSReceiveMessagePolicy",
        PolicyDocument=json.dumps(function_inline_policies(config, arns)["SQSReceiveMessagePolicy"]),
    )
    mapping = lam.create_event_source_mapping(**create)
    # moto's own trigger never touches the queue: a message sent now is still there, never received.
    admin(endpoint, "sqs").send_message(QueueUrl=queue_url, MessageBody="for the runtime")
    attributes = admin(endpoint, "sqs").get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "1"
    with pytest.raises(botocore.exceptions.ClientError, match="greater than 0 if maximum batch size"):
        lam.update_event_source_mapping(UUID=mapping["UUID"], BatchSize=100)
    moto_patches.report_processing_result(mapping["UUID"], "PROBLEM: seen by the poller")
    assert lam.get_event_source_mapping(UUID=mapping["UUID"])["LastProcessingResult"] == "PROBLEM: seen by the poller"


def test_one_mapping_per_queue_and_function_even_when_two_creates_race(endpoint, stack):
    from concurrent.futures import ThreadPoolExecutor

    config, arns, _queue_url = stack
    lam = _function(endpoint, config, arns, timeout=3)
    create = dict(EventSourceArn=arns.queue(config.queue_name), FunctionName=config.function_name)

    def attempt(_: int) -> str:
        try:
            return lam.create_event_source_mapping(**create)["UUID"]
        except botocore.exceptions.ClientError as e:
            assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 409
            return e.response["Error"]["Code"] + ": " + e.response["Error"]["Message"]

    with ThreadPoolExecutor(max_workers=4) as pool:
        answers = list(pool.map(attempt, range(4)))
    [uuid] = [a for a in answers if not a.startswith("ResourceConflictException")]
    assert [m["UUID"] for m in lam.list_event_source_mappings(**create)["EventSourceMappings"]] == [uuid]
    assert (
        answers.count(
            f'ResourceConflictException: An event source mapping with SQS arn (" {create["EventSourceArn"]} ") and '
            f'function (" {config.function_name} ") already exists. Please update or delete the existing mapping '
            f"with UUID {uuid}"
        )
        == 3
    )


def test_concurrency_settings_are_kept_and_refused_as_lambda_does(endpoint, stack):
    config, arns, _queue_url = stack
    lam = _function(endpoint, config, arns, timeout=3)
    lam.put_function_concurrency(FunctionName=config.function_name, ReservedConcurrentExecutions=0)
    # A reservation of 0 (throttle everything) is reported, as AWS reports it; moto alone leaves it out.
    assert lam.get_function(FunctionName=config.function_name)["Concurrency"] == {"ReservedConcurrentExecutions": 0}
    with pytest.raises(botocore.exceptions.ClientError, match="below its minimum value of \\[100\\]"):
        lam.put_function_concurrency(FunctionName=config.function_name, ReservedConcurrentExecutions=901)
    unchecked = boto3.client(
        "lambda",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id="admin",
        aws_secret_access_key="admin",
        config=botocore.config.Config(parameter_validation=False),  # what a client without botocore's model sends
    )
    create = dict(EventSourceArn=arns.queue(config.queue_name), FunctionName=config.function_name)
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        unchecked.create_event_source_mapping(**create, ScalingConfig={"MaximumConcurrency": 1})
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "Member must have value greater than or equal to 2" in refused.value.response["Error"]["Message"]
    mapping = lam.create_event_source_mapping(**create, ScalingConfig={"MaximumConcurrency": 2})
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": 2}
    with pytest.raises(botocore.exceptions.ClientError, match="less than or equal to 1000"):
        unchecked.update_event_source_mapping(UUID=mapping["UUID"], ScalingConfig={"MaximumConcurrency": 1001})


def test_the_rule_book_is_lambdas():
    ok = MappingRequest(10, 0, 30, 3, True, None)
    assert refusal(ok) is None
    assert refusal(MappingRequest(11, 0, 30, 3, True, None))[1].startswith("Maximum batch window")
    assert refusal(MappingRequest(11, 1, 30, 3, True, None)) is None
    assert refusal(MappingRequest(10, 0, 30, 3, False, None))[1] == (
        "The role defined for the function cannot be assumed by Lambda."
    )
    assert refusal(MappingRequest(10, 0, 30, 3, True, "DeleteMessage"))[1] == (
        "The provided execution role does not have permissions to call DeleteMessage on SQS"
    )
    assert refusal(MappingRequest(10, 0, 30, 31, True, None)) == (
        "InvalidParameterValueException",
        "Queue visibility timeout: 30 seconds is less than Function timeout: 31 seconds",
    )
    assert refusal(MappingRequest(10, 0, None, 31, True, None)) is None  # no such queue: moto answers


def test_requests_map_to_the_iam_actions_and_resources_aws_checks():
    def need(service, operation, **params):
        return needs(SignedRequest("AKID", "eu-west-2", service, operation, params), account)

    account = "111122223333"
    region = f"eu-west-2:{account}"
    assert need("dynamodb", "PutItem", TableName="T") == [
        Need("dynamodb:PutItem", f"arn:aws:dynamodb:{region}:table/T")
    ]
    url = "http://127.0.0.1:4599/444455556666/Q"
    assert need("sqs", "ReceiveMessage", QueueUrl=url) == [
        Need("sqs:ReceiveMessage", "arn:aws:sqs:eu-west-2:444455556666:Q")
    ]
    assert need("sqs", "GetQueueUrl", QueueName="Q") == [Need("sqs:GetQueueUrl", f"arn:aws:sqs:{region}:Q")]
    assert need("logs", "PutLogEvents", logGroupName="/g", logStreamName="s") == [
        Need("logs:PutLogEvents", f"arn:aws:logs:{region}:log-group:/g:log-stream:s")
    ]
    assert need("sqs", "ListQueues") == [Need("sqs:ListQueues", "*")]
    assert need("sqs", "DeleteMessageBatch", QueueUrl=url)[0].action == "sqs:DeleteMessage"
    assert need("dynamodb", "BatchWriteItem")[0].action == "dynamodb:BatchWriteItem"
    # Lambda's REST calls are read from method and path (Service Authorization Reference, Lambda).
    function = f"arn:aws:lambda:{region}:function:F"
    assert need("lambda", "GET /2015-03-31/functions/F") == [Need("lambda:GetFunction", function)]
    assert need("lambda", "POST /2015-03-31/functions/F/invocations") == [Need("lambda:InvokeFunction", function)]
    role = f"arn:aws:iam::{account}:role/R"
    assert need("lambda", "POST /2015-03-31/functions", FunctionName="F", Role=role) == [
        Need("lambda:CreateFunction", function),
        Need("iam:PassRole", role, {"iam:PassedToService": "lambda.amazonaws.com"}),
    ]
    assert need("lambda", "POST /2015-03-31/event-source-mappings/", FunctionName="F") == [
        Need("lambda:CreateEventSourceMapping", "*", {"lambda:FunctionArn": function})
    ]
    assert need("lambda", "DELETE /2015-03-31/event-source-mappings/u-1", FunctionName="F") == [
        Need("lambda:DeleteEventSourceMapping", f"arn:aws:lambda:{region}:event-source-mapping:u-1",
             {"lambda:FunctionArn": function})
    ]  # fmt: skip
    assert need("sns", "Unsubscribe", SubscriptionArn="arn:aws:sns:eu-west-2:1:T:x") == [Need("sns:Unsubscribe", "*")]
    assert need("sns", "CreateTopic", Name="T") == [Need("sns:CreateTopic", f"arn:aws:sns:{region}:T")]
    assert need("iam", "PutRolePolicy", RoleName="R", PolicyName="P") == [Need("iam:PutRolePolicy", role)]
    assert need("cloudwatch", "PutMetricAlarm", AlarmName="A") == [
        Need("cloudwatch:PutMetricAlarm", f"arn:aws:cloudwatch:{region}:alarm:A")
    ]


def test_a_patch_target_that_changed_shape_stops_start_up_with_one_line(monkeypatch):
    from moto.awslambda.models import EventSourceMapping

    monkeypatch.setattr(EventSourceMapping, "get_configuration", lambda: None)
    with pytest.raises(OrderflowError) as stopped:
        moto_patches.check_targets()
    message = str(stopped.value)
    assert "EventSourceMapping.get_configuration no longer has self" in message and "\n" not in message
    monkeypatch.undo()
    moto_patches.check_targets()


def test_the_scaled_receive_and_delete_keep_sqs_semantics(endpoint, stack):
    _, _, queue_url = stack
    sqs = admin(endpoint, "sqs")
    for body in ("first", "second", "third"):
        sqs.send_message(QueueUrl=queue_url, MessageBody=body)
    received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=2, VisibilityTimeout=30)["Messages"]
    assert [m["Body"] for m in received] == ["first", "second"]  # stops at the count asked for, oldest first
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=received[0]["ReceiptHandle"])
    sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=received[0]["ReceiptHandle"])  # twice succeeds, as on AWS
    with pytest.raises(botocore.exceptions.ClientError, match="ReceiptHandleIsInvalid"):
        sqs.delete_message(QueueUrl=queue_url, ReceiptHandle="not-a-handle")
    [rest] = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)["Messages"]
    assert rest["Body"] == "third"  # the in-flight second stays invisible; the retention check keeps the third


def test_a_send_that_skips_counting_the_queue_keeps_sqs_semantics(endpoint):
    """A send no longer counts the queue's messages to read ContentBasedDeduplication: FIFO rules still hold, the
    counts GetQueueAttributes reports are still exact."""
    sqs = admin(endpoint, "sqs")
    standard = sqs.create_queue(QueueName="sends-standard")["QueueUrl"]
    for body in ("a", "a", "b"):
        sqs.send_message(QueueUrl=standard, MessageBody=body)
    counts = sqs.get_queue_attributes(QueueUrl=standard, AttributeNames=["All"])["Attributes"]
    assert counts["ApproximateNumberOfMessages"] == "3" and "ContentBasedDeduplication" not in counts

    deduplicated = sqs.create_queue(
        QueueName="sends-cbd.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    )["QueueUrl"]
    for _ in range(2):  # the same body twice: one message, deduplicated by its content
        sqs.send_message(QueueUrl=deduplicated, MessageBody="same", MessageGroupId="g")
    assert sqs.get_queue_attributes(QueueUrl=deduplicated, AttributeNames=["ApproximateNumberOfMessages"])[
        "Attributes"
    ] == {"ApproximateNumberOfMessages": "1"}

    explicit = sqs.create_queue(QueueName="sends-explicit.fifo", Attributes={"FifoQueue": "true"})["QueueUrl"]
    with pytest.raises(botocore.exceptions.ClientError) as refused:  # neither content-based nor an explicit id
        sqs.send_message(QueueUrl=explicit, MessageBody="x", MessageGroupId="g")
    assert "ContentBasedDeduplication enabled or MessageDeduplicationId" in refused.value.response["Error"]["Message"]
    sqs.send_message(QueueUrl=explicit, MessageBody="x", MessageGroupId="g", MessageDeduplicationId="1")
    attributes = sqs.get_queue_attributes(QueueUrl=explicit, AttributeNames=["All"])["Attributes"]
    assert attributes["ContentBasedDeduplication"] == "false" and attributes["ApproximateNumberOfMessages"] == "1"


def test_the_send_patch_stops_start_up_if_a_send_reads_another_queue_attribute(monkeypatch):
    from moto.sqs.models import SQSBackend

    def send_message(self, queue_name, message_body):
        return self.get_queue(queue_name).attributes.get("DelaySeconds")

    monkeypatch.setattr(SQSBackend, "send_message", send_message)
    with pytest.raises(OrderflowError) as stopped:
        moto_patches.check_targets()
    assert "send_message reads queue attributes orderflow does not provide" in str(stopped.value)


def test_the_pollers_in_process_client_answers_as_sqs_does_and_checks_the_role(endpoint, stack):
    from orderflow.local.iam.identities import Identities
    from orderflow.local.iam.queue_access import InProcessQueues

    config, arns, queue_url = stack
    issued = admin(endpoint, "sts").assume_role(RoleArn=arns.role(config.role_name), RoleSessionName="poller")
    roles = Identities()
    queues = InProcessQueues(roles, issued["Credentials"]["AccessKeyId"], REGION)
    admin(endpoint, "sqs").send_message(
        QueueUrl=queue_url,
        MessageBody="order",
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "test"}},
    )
    [message] = queues.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1)["Messages"]
    over_http = as_role(endpoint, config, arns, "sqs")
    assert message["Body"] == "order" and message["Attributes"]["ApproximateReceiveCount"] == "1"
    assert message["MessageAttributes"] == {"kind": {"DataType": "String", "StringValue": "test"}}
    assert set(message) == {
        "MessageId",
        "ReceiptHandle",
        "MD5OfBody",
        "Body",
        "MessageAttributes",
        "MD5OfMessageAttributes",
        "Attributes",
    }
    assert over_http.receive_message(QueueUrl=queue_url).get("Messages") is None  # in flight, as after any receive
    deleted = queues.delete_message_batch(
        QueueUrl=queue_url, Entries=[{"Id": "0", "ReceiptHandle": message["ReceiptHandle"]}]
    )
    assert deleted == {"Successful": [{"Id": "0"}], "Failed": []}

    admin(endpoint, "iam").delete_role_policy(RoleName=config.role_name, PolicyName="SQSReceiveMessagePolicy")
    roles.invalidate()  # the middleware does this on every IAM write; this client was built outside it
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        queues.receive_message(QueueUrl=queue_url)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert "is not authorized to perform: sqs:ReceiveMessage on resource" in refused.value.response["Error"]["Message"]
    elsewhere = queue_url.rsplit("/", 1)[0] + "/NoSuchQueue"
    with pytest.raises(botocore.exceptions.ClientError) as refused:  # authorisation comes before existence
        queues.delete_message_batch(QueueUrl=elsewhere, Entries=[])
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    anywhere = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sqs:*", "Resource": "*"}]}
    admin(endpoint, "iam").put_role_policy(
        RoleName=config.role_name, PolicyName="All", PolicyDocument=json.dumps(anywhere)
    )
    roles.invalidate()
    with pytest.raises(botocore.exceptions.ClientError) as missing:
        queues.delete_message_batch(QueueUrl=elsewhere, Entries=[{"Id": "0", "ReceiptHandle": "any"}])
    assert missing.value.response["Error"]["Code"] == "AWS.SimpleQueueService.NonExistentQueue"


def test_a_decision_read_before_an_iam_change_is_never_cached_after_it(monkeypatch):
    from orderflow.local.iam import identities

    roles = identities.Identities()
    role = "arn:aws:iam::111122223333:role/r"
    allow_all = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}

    def policies_read_while_iam_changes(role_arn, plane):
        roles.invalidate()  # an IAM write lands between reading the policies and caching the answer
        return identities._loaded([allow_all], None, {})

    monkeypatch.setattr(identities, "_role_policies", policies_read_while_iam_changes)
    assert roles.decide(role, "sqs:ReceiveMessage", "arn:aws:sqs:eu-west-2:111122223333:q") == "allow"
    monkeypatch.setattr(identities, "_role_policies", lambda role_arn, plane: identities._loaded([], None, {}))
    assert roles.decide(role, "sqs:ReceiveMessage", "arn:aws:sqs:eu-west-2:111122223333:q") == "implicit-deny"


def test_concurrent_receives_never_hand_out_one_message_twice(endpoint, stack):
    """Many pollers of a scaled mapping receive at once, in-process beside the queues: SQS gives each message to one
    of them, and moves each spent one to the DLQ once."""
    import threading

    from moto.sqs.models import sqs_backends

    config, arns, queue_url = stack
    sqs = admin(endpoint, "sqs")
    dlq_url = sqs.create_queue(QueueName=config.dlq_name)["QueueUrl"]
    redrive = {"deadLetterTargetArn": arns.queue(config.dlq_name), "maxReceiveCount": "2"}
    sqs.set_queue_attributes(QueueUrl=queue_url, Attributes={"RedrivePolicy": json.dumps(redrive)})
    for start in range(0, 400, 10):
        sqs.send_message_batch(
            QueueUrl=queue_url, Entries=[{"Id": str(i), "MessageBody": f"m{start + i}"} for i in range(10)]
        )
    backend = sqs_backends[arns.account][REGION]
    received: list[str] = []
    failures: list[BaseException] = []
    lock = threading.Lock()

    def drain(visibility: int) -> None:
        try:
            while batch := backend.receive_message(config.queue_name, 10, 0, visibility):
                with lock:
                    received.extend(m.body for m in batch)
        except BaseException as e:  # noqa: BLE001 - what moto's unguarded scan raised
            failures.append(e)

    def run(visibility: int) -> None:
        threads = [threading.Thread(target=drain, args=(visibility,)) for _ in range(12)]  # a scaled mapping's
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)

    # Visible again at once after each receive: two receives each, then the next receive moves it to the DLQ.
    run(0)
    assert failures == []
    assert sorted(received) == sorted(f"m{i}" for i in range(400) for _ in range(2))  # never one more
    depth = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
    assert int(depth["Attributes"]["ApproximateNumberOfMessages"]) == 400


def test_update_function_code_applies_the_architectures_it_is_given(endpoint):
    """Lambda API reference, UpdateFunctionCode: Architectures is one of its parameters; moto alone drops it."""
    import io
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("index.py", "def lambda_handler(event, context):\n    return 1\n")
    iam, lam = admin(endpoint, "iam"), admin(endpoint, "lambda")
    role = iam.create_role(RoleName="arch-role", AssumeRolePolicyDocument=json.dumps(lambda_trust_policy()))["Role"]
    lam.create_function(FunctionName="arch", Runtime="python3.12", Role=role["Arn"], Handler="index.lambda_handler",
                        Code={"ZipFile": buffer.getvalue()})  # fmt: skip
    lam.update_function_code(FunctionName="arch", ZipFile=buffer.getvalue(), Architectures=["arm64"])
    assert lam.get_function(FunctionName="arch")["Configuration"]["Architectures"] == ["arm64"]
    with pytest.raises(botocore.exceptions.ClientError):
        lam.update_function_code(FunctionName="arch", ZipFile=buffer.getvalue(), Architectures=["sparc"])


def as_user(endpoint, keys, service):
    return boto3.client(service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id=keys["AccessKeyId"],
                        aws_secret_access_key=keys["SecretAccessKey"])  # fmt: skip


def _allow(*actions, resource="*"):
    return json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": list(actions),
                                                               "Resource": resource}]})  # fmt: skip


def new_user(endpoint, name: str) -> tuple[object, dict]:
    """An IAM user with no policy, and its access key: (the administrator's IAM client, the key)."""
    iam = admin(endpoint, "iam")
    iam.create_user(UserName=name)
    return iam, iam.create_access_key(UserName=name)["AccessKey"]


def test_an_iam_users_keys_carry_its_own_group_and_attached_policies_and_its_boundary(endpoint, stack):
    config, arns, queue_url = stack
    name = f"u-{config.name}"
    iam, keys = new_user(endpoint, name)
    sqs = as_user(endpoint, keys, "sqs")
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        sqs.get_queue_attributes(QueueUrl=queue_url)
    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    user_arn = f"arn:aws:iam::{arns.account}:user/{name}"
    assert refused.value.response["Error"]["Message"] == (
        f"User: {user_arn} is not authorized to perform: sqs:GetQueueAttributes on resource: "
        f"{arns.queue(config.queue_name)} because no identity-based policy allows the sqs:GetQueueAttributes action"
    )
    iam.create_group(GroupName=name)
    iam.put_group_policy(GroupName=name, PolicyName="sqs", PolicyDocument=_allow("sqs:Get*"))
    iam.add_user_to_group(GroupName=name, UserName=name)
    assert "Attributes" in sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])
    arn = iam.create_policy(PolicyName=f"{name}-ddb", PolicyDocument=_allow("dynamodb:*"))["Policy"]["Arn"]
    iam.attach_user_policy(UserName=name, PolicyArn=arn)
    ddb = as_user(endpoint, keys, "dynamodb")
    ddb.describe_table(TableName=config.table_name)
    # A boundary caps what the identity policies grant (moto keeps none for users: the embedded AWS does).
    only_sqs = iam.create_policy(PolicyName=f"{name}-boundary", PolicyDocument=_allow("sqs:*"))["Policy"]["Arn"]
    iam.put_user_permissions_boundary(UserName=name, PermissionsBoundary=only_sqs)
    with pytest.raises(botocore.exceptions.ClientError) as capped:
        ddb.describe_table(TableName=config.table_name)
    assert capped.value.response["Error"]["Message"].endswith(
        "because no permissions boundary allows the dynamodb:DescribeTable action"
    )
    iam.delete_user_permissions_boundary(UserName=name)
    ddb.describe_table(TableName=config.table_name)
    # A deleted key signs nothing any more: never the unrestricted default.
    iam.delete_access_key(UserName=name, AccessKeyId=keys["AccessKeyId"])
    with pytest.raises(botocore.exceptions.ClientError) as invalid:
        ddb.describe_table(TableName=config.table_name)
    assert invalid.value.response["Error"]["Code"] == "InvalidClientTokenId"


def test_create_function_needs_iam_pass_role_on_that_role_for_lambda(endpoint, stack):
    config, arns, _ = stack
    name = f"p-{config.name}"
    iam, keys = new_user(endpoint, name)
    iam.put_user_policy(UserName=name, PolicyName="lambda", PolicyDocument=_allow("lambda:*"))
    lam = as_user(endpoint, keys, "lambda")
    create = {"FunctionName": f"{name}-f", "Runtime": "python3.12", "Role": arns.role(config.role_name),
              "Handler": "index.lambda_handler", "Code": {"ZipFile": b"PK\x05\x06" + b"\x00" * 18}}  # fmt: skip
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        lam.create_function(**create)
    message = refused.value.response["Error"]["Message"]
    assert f"iam:PassRole on resource: {arns.role(config.role_name)}" in message
    passed_to_ec2 = json.dumps({"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Action": "iam:PassRole", "Resource": arns.role(config.role_name),
        "Condition": {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}}]})  # fmt: skip
    iam.put_user_policy(UserName=name, PolicyName="pass", PolicyDocument=passed_to_ec2)
    with pytest.raises(botocore.exceptions.ClientError):
        lam.create_function(**create)  # passed to another service: still refused


def test_simulate_principal_and_custom_policy_answer_with_the_enforcing_evaluator(endpoint, stack):
    config, arns, _ = stack
    iam = admin(endpoint, "iam")
    name = f"s-{config.name}"
    iam.create_user(UserName=name)
    table = arns.table(config.table_name)
    iam.put_user_policy(UserName=name, PolicyName="p", PolicyDocument=_allow("dynamodb:PutItem", resource=table))
    answer = iam.simulate_principal_policy(
        PolicySourceArn=f"arn:aws:iam::{arns.account}:user/{name}",
        ActionNames=["dynamodb:PutItem", "dynamodb:DeleteTable"],
        ResourceArns=[table],
    )
    assert [(r["EvalActionName"], r["EvalDecision"]) for r in answer["EvaluationResults"]] == [
        ("dynamodb:PutItem", "allowed"),
        ("dynamodb:DeleteTable", "implicitDeny"),
    ]
    tls_only = json.dumps({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "sqs:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "sqs:*", "Resource": "*",
         "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]})  # fmt: skip
    custom = iam.simulate_custom_policy(
        PolicyInputList=[tls_only],
        ActionNames=["sqs:SendMessage"],
        ContextEntries=[{"ContextKeyName": "aws:SecureTransport", "ContextKeyValues": ["false"],
                         "ContextKeyType": "boolean"}],
    )  # fmt: skip
    assert custom["EvaluationResults"][0]["EvalDecision"] == "explicitDeny"
    with pytest.raises(botocore.exceptions.ClientError) as unknown:
        iam.simulate_principal_policy(PolicySourceArn=f"arn:aws:iam::{arns.account}:user/nobody", ActionNames=["s:A"])
    assert unknown.value.response["Error"]["Code"] == "NoSuchEntity"


def test_iam_refuses_a_malformed_policy_document_when_it_is_written(endpoint, stack):
    config, _, _ = stack
    iam = admin(endpoint, "iam")
    lower_case = json.dumps(
        {"Version": "2012-10-17", "Statement": [{"Effect": "deny", "Action": "*", "Resource": "*"}]}
    )
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        iam.put_role_policy(RoleName=config.role_name, PolicyName="bad", PolicyDocument=lower_case)
    assert refused.value.response["Error"]["Code"] == "MalformedPolicyDocument"
    unknown = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*",
                          "Condition": {"StringEqualz": {"aws:username": "x"}}}]})  # fmt: skip
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        iam.create_policy(PolicyName=f"{config.name}-bad", PolicyDocument=unknown)
    assert "Invalid Condition type : StringEqualz" in refused.value.response["Error"]["Message"]


def test_a_queue_policy_deny_refuses_a_user_its_identity_policy_allows(endpoint, stack):
    """Policy evaluation logic, same account: an explicit Deny in the resource-based policy wins."""
    config, arns, queue_url = stack
    name = f"q-{config.name}"
    iam, keys = new_user(endpoint, name)
    iam.put_user_policy(UserName=name, PolicyName="sqs", PolicyDocument=_allow("sqs:*"))
    sqs = as_user(endpoint, keys, "sqs")
    sqs.send_message(QueueUrl=queue_url, MessageBody="allowed")
    user_arn = f"arn:aws:iam::{arns.account}:user/{name}"
    no_sends = {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Principal": {"AWS": user_arn},
                "Action": "sqs:SendMessage", "Resource": arns.queue(config.queue_name)}]}  # fmt: skip
    admin(endpoint, "sqs").set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(no_sends)})
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        sqs.send_message(QueueUrl=queue_url, MessageBody="refused")
    assert refused.value.response["Error"]["Message"].endswith("with an explicit deny in a resource-based policy")


def test_sqs_refuses_a_queue_policy_it_cannot_read(endpoint, stack):
    _, _, queue_url = stack
    lower_case = {"Version": "2012-10-17", "Statement": [{"Effect": "deny", "Principal": "*", "Action": "sqs:*",
                                                          "Resource": "*"}]}  # fmt: skip
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        admin(endpoint, "sqs").set_queue_attributes(QueueUrl=queue_url, Attributes={"Policy": json.dumps(lower_case)})
    assert refused.value.response["Error"]["Code"] == "InvalidAttributeValue"
    assert "Invalid value for the parameter Policy" in refused.value.response["Error"]["Message"]
