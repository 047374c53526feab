"""The mutation suite: break a healthy stack the way users break theirs, and check that the embedded AWS does what
AWS does, that `verify` exits 1 naming the broken hop, and that `up` repairs it so a new order lands.

Each case runs on a fresh stack: `up`, the mutation through boto3 (as a user's script or the AWS CLI would), a
published order, what AWS would do with it (waited for, never slept on), `verify`, `up`, a new order, `verify`.
`pytest -s tests/fidelity | grep FIDELITY` prints the table recorded in docs/fidelity.md.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import botocore.exceptions
import pytest

from tests.e2e.conftest import Aws, Cli, wait_for
from tests.e2e.test_iac import aws_cli, deploy

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
FAST = ["--function-timeout", "1", "--visibility-timeout", "6"]


@dataclass
class Seen:
    """What one case can look at: the embedded AWS, its stack, the order published after the mutation."""

    aws: Aws
    stack: str
    order_id: str
    message_id: str
    home: Path

    @property
    def table(self) -> str:
        return f"{self.stack}-Orders"

    @property
    def function(self) -> str:
        return f"{self.stack}-ProcessOrderFunction"

    @property
    def group(self) -> str:
        return f"/aws/lambda/{self.function}"

    def daemon_log(self) -> str:
        return (self.home / "local.log").read_text(errors="replace")

    def records(self) -> list[dict]:
        return [r for r in self.aws.handler_records(self.group) if r.get("orderId") == self.order_id]

    def last_processing_result(self) -> str:
        return self.aws.mapping(self.function).get("LastProcessingResult") or ""


def _role(stack: str) -> str:
    return f"{stack}-ProcessOrderFunction-role"


def _delete_inline(name: str) -> Callable[[Aws, str], None]:
    def apply(aws: Aws, stack: str) -> None:
        aws.client("iam").delete_role_policy(RoleName=_role(stack), PolicyName=name)

    return apply


def _put_inline(name: str, effect: str, action: str, resource: Callable[[Aws, str], str]) -> Callable[[Aws, str], None]:
    def apply(aws: Aws, stack: str) -> None:
        document = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": effect, "Action": action, "Resource": resource(aws, stack)}],
        }
        aws.client("iam").put_role_policy(RoleName=_role(stack), PolicyName=name, PolicyDocument=json.dumps(document))

    return apply


def _queue_policy(policy: Callable[[Aws, str], str]) -> Callable[[Aws, str], None]:
    def apply(aws: Aws, stack: str) -> None:
        aws.client("sqs").set_queue_attributes(
            QueueUrl=aws.queue_url(f"{stack}-OrderQueue"), Attributes={"Policy": policy(aws, stack)}
        )

    return apply


def _policy_for_another_topic(aws: Aws, stack: str) -> str:
    queue = f"arn:aws:sqs:us-east-1:{aws.account}:{stack}-OrderQueue"
    statement = {
        "Effect": "Allow",
        "Principal": {"Service": "sns.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": queue,
        "Condition": {"ArnEquals": {"aws:SourceArn": f"arn:aws:sns:us-east-1:{aws.account}:{stack}-OtherTopic"}},
    }
    return json.dumps({"Version": "2012-10-17", "Statement": [statement]})


def _untrusting_role(aws: Aws, stack: str) -> None:
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}],
    }
    aws.client("iam").update_assume_role_policy(RoleName=_role(stack), PolicyDocument=json.dumps(trust))


def _mapping_over_timeout(aws: Aws, stack: str) -> None:
    function = f"{stack}-ProcessOrderFunction"
    lam = aws.client("lambda")
    lam.delete_event_source_mapping(UUID=aws.mapping(function)["UUID"])
    lam.update_function_configuration(FunctionName=function, Timeout=10)


def _wrong_handler(aws: Aws, stack: str) -> None:
    aws.client("lambda").update_function_configuration(
        FunctionName=f"{stack}-ProcessOrderFunction", Handler="index.missing_handler"
    )


# ---- what AWS does, waited for on the embedded AWS; each returns a short account of what was seen ----


def _write_refused(seen: Seen) -> str:
    refused = wait_for(
        lambda: [r for r in seen.records() if "AccessDeniedException" in str(r.get("reason"))],
        30,
        "the handler's PutItem refused with AccessDeniedException",
        state=lambda: f"records {seen.records()}",
    )
    assert seen.aws.item(seen.table, seen.order_id) is None
    return f"PutItem refused (AccessDeniedException, attempt {refused[0]['attempt']}); no item"


def _dropped_by_sns(seen: Seen) -> str:
    wait_for(lambda: f"SNS dropped message {seen.message_id}" in seen.daemon_log(), 20, "SNS to drop the message")
    assert seen.aws.depth(f"{seen.stack}-OrderQueue") == 0
    assert seen.aws.item(seen.table, seen.order_id) is None
    return "message dropped by SNS; queue empty; no item"


def _not_received(expected: str) -> Callable[[Seen], str]:
    def refused(seen: Seen) -> str:
        return seen.last_processing_result() if expected in seen.last_processing_result() else ""

    def before_publish(seen: Seen) -> None:
        # A long poll that began before the permission went may still return a message, on AWS too (a request is
        # authorised when it starts): publish once the pollers have met the refusal.
        wait_for(
            lambda: refused(seen), 20, f"LastProcessingResult to say {expected!r}", state=seen.last_processing_result
        )

    def observe(seen: Seen) -> str:
        result = wait_for(
            lambda: seen.last_processing_result() if expected in seen.last_processing_result() else None,
            20,
            f"LastProcessingResult to say {expected!r}",
            state=seen.last_processing_result,
        )
        assert seen.aws.depth(f"{seen.stack}-OrderQueue") == 1  # the order waits in the queue, not lost
        assert seen.aws.item(seen.table, seen.order_id) is None
        return f"message stays queued; LastProcessingResult {result!r}"

    observe.before_publish = before_publish  # type: ignore[attr-defined]
    return observe


def _never_deleted(seen: Seen) -> str:
    wait_for(lambda: seen.aws.item(seen.table, seen.order_id), 30, "the order to be written")
    wait_for(
        lambda: seen.aws.depth(f"{seen.stack}-OrderQueueDLQ") == 1,
        60,
        "the processed but undeleted message to reach the DLQ",
        state=lambda: f"queue {seen.aws.depth(f'{seen.stack}-OrderQueue')}, records {len(seen.records())}",
    )
    return f"item written, message never deleted: {len(seen.records())} run(s), then the DLQ"


def _no_log_lines(seen: Seen) -> str:
    wait_for(lambda: seen.aws.item(seen.table, seen.order_id), 30, "the order to be written")
    wait_for(
        lambda: f"log line(s) for {seen.group} " in seen.daemon_log(),
        20,
        "the runtime to drop the function's log lines",
    )
    assert seen.records() == []
    return "item written; no log line reaches CloudWatch Logs"


def _mapping_refused(seen: Seen) -> str:
    with pytest.raises(botocore.exceptions.ClientError) as refused:
        seen.aws.client("lambda").create_event_source_mapping(
            EventSourceArn=f"arn:aws:sqs:us-east-1:{seen.aws.account}:{seen.stack}-OrderQueue",
            FunctionName=seen.function,
        )
    error = refused.value.response["Error"]
    assert error["Code"] == "InvalidParameterValueException"
    assert error["Message"] == "Queue visibility timeout: 6 seconds is less than Function timeout: 10 seconds"
    assert seen.aws.depth(f"{seen.stack}-OrderQueue") == 1
    return f"CreateEventSourceMapping refused: {error['Message']}"


def _handler_not_found(seen: Seen) -> str:
    wait_for(
        lambda: any("Runtime.HandlerNotFound" in m for m in seen.aws.log_messages(seen.group)),
        30,
        "an invocation failing with Runtime.HandlerNotFound",
    )
    assert seen.aws.item(seen.table, seen.order_id) is None
    return "invocation fails with Runtime.HandlerNotFound; no item"


@dataclass
class Mutation:
    name: str
    aws_does: str
    apply: Callable[[Aws, str], None]
    observe: Callable[[Seen], str]
    hop: str
    # The order published while broken is processed after the repair (it waited in the queue, as on AWS).
    delivered_after_repair: bool = False


def _table_arn(name: str) -> Callable[[Aws, str], str]:
    return lambda aws, stack: f"arn:aws:dynamodb:us-east-1:{aws.account}:table/{name}"


MUTATIONS = [
    Mutation(
        "no DynamoPutItemPolicy",
        "PutItem gets AccessDeniedException; the order is retried, then dead-lettered",
        _delete_inline("DynamoPutItemPolicy"),
        _write_refused,
        "dynamodb",
    ),
    Mutation(
        "PutItem scoped to another table",
        "PutItem gets AccessDeniedException",
        _put_inline("DynamoPutItemPolicy", "Allow", "dynamodb:PutItem", _table_arn("SomeOtherTable")),
        _write_refused,
        "dynamodb",
    ),
    Mutation(
        "an explicit Deny on PutItem",
        "the Deny wins over the Allow: AccessDeniedException",
        _put_inline("DenyOrderWrites", "Deny", "dynamodb:PutItem", lambda aws, stack: "*"),
        _write_refused,
        "dynamodb",
    ),
    Mutation(
        "no queue policy",
        "SNS cannot deliver: the message is dropped, never queued",
        _queue_policy(lambda aws, stack: ""),
        _dropped_by_sns,
        "wiring",
    ),
    Mutation(
        "a queue policy for another topic",
        "the ArnEquals condition fails: SNS drops the message",
        _queue_policy(_policy_for_another_topic),
        _dropped_by_sns,
        "wiring",
    ),
    Mutation(
        "no SQSReceiveMessagePolicy",
        "the mapping cannot poll (LastProcessingResult PROBLEM); the message waits in the queue",
        _delete_inline("SQSReceiveMessagePolicy"),
        _not_received("receiveMessage"),
        "lambda",
        delivered_after_repair=True,
    ),
    Mutation(
        "no SQSDeleteMessagePolicy",
        "the batch is processed but never deleted: it returns and reaches the DLQ",
        _delete_inline("SQSDeleteMessagePolicy"),
        _never_deleted,
        "lambda",
    ),
    Mutation(
        "no logs policy",
        "the function runs; its log lines never reach CloudWatch Logs",
        _delete_inline("CloudWatchLogsWritePolicy"),
        _no_log_lines,
        "logs",
    ),
    Mutation(
        "function timeout above the visibility timeout at mapping creation",
        "CreateEventSourceMapping: InvalidParameterValueException",
        _mapping_over_timeout,
        _mapping_refused,
        "lambda",
        delivered_after_repair=True,
    ),
    Mutation(
        "a wrong handler",
        "every invocation fails with Runtime.HandlerNotFound; retried, then dead-lettered",
        _wrong_handler,
        _handler_not_found,
        "lambda",
    ),
    Mutation(
        "a trust policy without lambda.amazonaws.com",
        "Lambda cannot assume the role: nothing is received or invoked",
        _untrusting_role,
        _not_received("cannot be assumed by Lambda"),
        "lambda",
        delivered_after_repair=True,
    ),
]


def _publish(cli: Cli, stack: str) -> dict:
    [published] = cli.json("--stack", stack, "publish-test")["published"]
    return published


def _verify(cli: Cli, stack: str, timeout: str) -> tuple[int, dict]:
    result = cli("--local", "--json", "--stack", stack, "verify", "--timeout", timeout, check=False)
    return result.returncode, json.loads(result.stdout)


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name.replace(" ", "-"))
def test_a_mutation_behaves_as_on_aws_verify_names_its_hop_and_up_repairs_it(cli, aws, stack, home, mutation):
    cli("--local", "--stack", stack, "up", *FAST)
    mutation.apply(aws, stack)
    settle = getattr(mutation.observe, "before_publish", None)
    if settle is not None:
        settle(Seen(aws, stack, "", "", home))
    published = _publish(cli, stack)
    seen = Seen(aws, stack, published["orderId"], published["messageId"], home)

    embedded_did = mutation.observe(seen)

    code, report = _verify(cli, stack, "3")
    broken = [c for c in report["checks"] if c["passed"] is False]
    assert code == 1 and broken, report
    assert broken[0]["hop"] == mutation.hop, report
    assert "orderflow up" in broken[0]["hint"], broken[0]
    print(
        f"FIDELITY | {mutation.name} | {mutation.aws_does} | {embedded_did} | {mutation.hop}: {broken[0]['evidence']}"
    )

    cli("--local", "--stack", stack, "up", *FAST)
    _publish(cli, stack)
    code, report = _verify(cli, stack, "30")
    assert code == 0, report
    if mutation.delivered_after_repair:
        wait_for(lambda: aws.item(seen.table, seen.order_id), 30, "the order that waited in the queue to land")


@pytest.fixture
def cloudformation_stack(embedded):
    name = f"c{uuid.uuid4().hex[:8]}"
    yield name, f"{name}-cfn"
    aws_cli(embedded, "cloudformation", "delete-stack", "--stack-name", f"{name}-cfn", check=False)


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.name.replace(" ", "-"))
def test_a_mutation_of_a_cloudformation_built_stack_is_named_as_on_an_orderflow_built_one(
    cli, aws, embedded, home, cloudformation_stack, tmp_path, mutation
):
    """The same misconfiguration, applied to the stack `orderflow export` + `aws cloudformation deploy` built:
    the embedded AWS does the same, and `verify --from-cloudformation` names the same hop, pointing at the
    CloudFormation stack to fix it in (orderflow does not change it)."""
    stack, cfn_stack = cloudformation_stack
    deploy(cli, embedded, aws, stack, cfn_stack, tmp_path / "out", *FAST)
    mutation.apply(aws, stack)
    settle = getattr(mutation.observe, "before_publish", None)
    if settle is not None:
        settle(Seen(aws, stack, "", "", home))
    proven = ["--from-cloudformation", cfn_stack]
    [published] = cli.json(*proven, "publish-test")["published"]
    mutation.observe(Seen(aws, stack, published["orderId"], published["messageId"], home))

    result = cli("--local", "--json", *proven, "verify", "--timeout", "3", check=False)
    report = json.loads(result.stdout)
    broken = [c for c in report["checks"] if c["passed"] is False]
    assert result.returncode == 1 and broken, report
    assert broken[0]["hop"] == mutation.hop, report
    assert f"CloudFormation stack {cfn_stack!r}" in broken[0]["hint"], broken[0]
