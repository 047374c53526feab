"""IAM policy evaluation (orderflow.iam): AWS's rules, including the cases moto's own evaluator gets wrong."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from orderflow.iam.evaluation import Principal, Request, denial_message, evaluate, statement_applies
from orderflow.iam.questions import lambda_may_assume, topic_may_send


def statement_effect(statement, action, resource, principal=None, context=None):
    """The statement's effect when it applies to the request, else None."""
    applies, _ = statement_applies(statement, Request(action, resource, principal, context or {}))
    return statement["Effect"] if applies else None


TABLE = "arn:aws:dynamodb:us-east-1:111122223333:table/Orders"
QUEUE = "arn:aws:sqs:us-east-1:111122223333:OrderQueue"
TOPIC = "arn:aws:sns:us-east-1:111122223333:OrderTopic"
ROLE = "arn:aws:iam::111122223333:role/ProcessOrderFunction-role"


def allow(action, resource):
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": resource}]}


def deny(action, resource):
    return {"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": action, "Resource": resource}]}


def queue_policy(condition=None, principal=None):
    statement = {
        "Effect": "Allow",
        "Principal": principal or {"Service": "sns.amazonaws.com"},
        "Action": "sqs:SendMessage",
        "Resource": QUEUE,
    }
    if condition is not None:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


def test_an_allow_on_the_exact_arn_allows_and_nothing_else_does():
    assert evaluate([allow("dynamodb:PutItem", TABLE)], "dynamodb:PutItem", TABLE) == "allow"
    assert evaluate([allow("dynamodb:PutItem", TABLE)], "dynamodb:PutItem", TABLE + "2") == "implicit-deny"
    assert evaluate([allow("dynamodb:PutItem", TABLE)], "dynamodb:GetItem", TABLE) == "implicit-deny"
    assert evaluate([], "dynamodb:PutItem", TABLE) == "implicit-deny"


def test_an_explicit_deny_wins_over_any_allow():
    policies = [allow("dynamodb:*", "*"), deny("dynamodb:PutItem", "*")]
    assert evaluate(policies, "dynamodb:PutItem", TABLE) == "explicit-deny"
    assert evaluate(policies, "dynamodb:GetItem", TABLE) == "allow"


def test_actions_match_case_insensitively_and_resources_case_sensitively():
    assert evaluate([allow("DynamoDB:putitem", TABLE)], "dynamodb:PutItem", TABLE) == "allow"
    assert evaluate([allow("dynamodb:PutItem", TABLE.lower())], "dynamodb:PutItem", TABLE) == "implicit-deny"


def test_wildcards_are_iams_and_other_characters_are_literal():
    assert evaluate([allow("sqs:*Message", QUEUE)], "sqs:ReceiveMessage", QUEUE) == "allow"
    assert evaluate([allow("sqs:?eceiveMessage", QUEUE)], "sqs:ReceiveMessage", QUEUE) == "allow"
    # A '.' in a pattern is a dot, not "any character" (moto's evaluator treats it as a regex).
    dotted = "arn:aws:sqs:us-east-1:111122223333:a.b"
    assert evaluate([allow("sqs:ReceiveMessage", dotted)], "sqs:ReceiveMessage", dotted.replace(".", "X")) == (
        "implicit-deny"
    )


def test_not_resource_and_not_action_exclude_what_they_name():
    # moto's evaluator lets a NotResource statement allow everything.
    everything_but_orders = {"Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "NotResource": TABLE}]}
    assert evaluate([everything_but_orders], "dynamodb:PutItem", TABLE) == "implicit-deny"
    assert evaluate([everything_but_orders], "dynamodb:PutItem", TABLE + "2") == "allow"
    all_but_delete = {"Statement": [{"Effect": "Allow", "NotAction": "sqs:DeleteMessage", "Resource": "*"}]}
    assert evaluate([all_but_delete], "sqs:DeleteMessage", QUEUE) == "implicit-deny"
    assert evaluate([all_but_delete], "sqs:ReceiveMessage", QUEUE) == "allow"


def test_the_queue_policy_lets_only_its_topic_send():
    ours = queue_policy({"ArnEquals": {"aws:SourceArn": TOPIC}})
    assert topic_may_send(ours, QUEUE, TOPIC).allowed
    assert not topic_may_send(ours, QUEUE, TOPIC + "-other").allowed  # moto ignores ArnEquals and would allow this
    assert not topic_may_send(None, QUEUE, TOPIC).allowed
    assert not topic_may_send(queue_policy(principal={"Service": "events.amazonaws.com"}), QUEUE, TOPIC).allowed
    assert topic_may_send(queue_policy(principal="*"), QUEUE, TOPIC).allowed
    assert topic_may_send(
        queue_policy({"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:111122223333:*"}}), QUEUE, TOPIC
    ).allowed
    assert topic_may_send(queue_policy({"StringEquals": {"aws:SourceAccount": "111122223333"}}), QUEUE, TOPIC).allowed
    assert not topic_may_send(
        queue_policy({"StringEquals": {"aws:SourceAccount": "444455556666"}}), QUEUE, TOPIC
    ).allowed


def test_condition_keys_missing_from_the_request():
    statement = {"Effect": "Allow", "Action": "*", "Resource": "*"}
    missing = {"aws:SourceArn": "x"}
    assert (
        statement_effect(statement | {"Condition": {"StringEquals": {"aws:Missing": "x"}}}, "a:B", "r", None, missing)
        is None
    )
    assert statement_effect(statement | {"Condition": {"StringNotEquals": {"aws:Missing": "x"}}}, "a:B", "r") == "Allow"
    assert (
        statement_effect(statement | {"Condition": {"StringEqualsIfExists": {"aws:Missing": "x"}}}, "a:B", "r")
        == "Allow"
    )
    assert statement_effect(statement | {"Condition": {"Null": {"aws:Missing": "true"}}}, "a:B", "r") == "Allow"


def test_lambda_may_assume_only_a_role_that_trusts_it():
    trusting = {
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    }
    ec2 = {
        "Statement": [{"Effect": "Allow", "Principal": {"Service": ["ec2.amazonaws.com"]}, "Action": "sts:AssumeRole"}]
    }
    assert lambda_may_assume(trusting, ROLE)
    assert not lambda_may_assume(ec2, ROLE)
    assert not lambda_may_assume(None, ROLE)
    account = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": "111122223333"}, "Action": "sts:AssumeRole"}]}
    assert not lambda_may_assume(account, ROLE)
    assert (
        evaluate(
            [account], "sts:AssumeRole", ROLE, Principal("AWS", "arn:aws:iam::111122223333:user/u", "111122223333")
        )
        == "allow"
    )


def test_denials_are_worded_as_aws_words_them():
    caller = "arn:aws:sts::111122223333:assumed-role/ProcessOrderFunction-role/ProcessOrderFunction"
    assert denial_message(caller, "dynamodb:PutItem", TABLE, "implicit-deny") == (
        f"User: {caller} is not authorized to perform: dynamodb:PutItem on resource: {TABLE} "
        "because no identity-based policy allows the dynamodb:PutItem action"
    )
    assert denial_message(caller, "dynamodb:PutItem", TABLE, "explicit-deny").endswith(
        "with an explicit deny in an identity-based policy"
    )


_ACTIONS = st.sampled_from(["dynamodb:PutItem", "sqs:ReceiveMessage", "sqs:DeleteMessage", "logs:PutLogEvents"])
_RESOURCES = st.sampled_from([TABLE, QUEUE, "*", "arn:aws:logs:us-east-1:111122223333:log-group:g:*"])
_STATEMENTS = st.builds(
    lambda effect, action, resource: {"Effect": effect, "Action": action, "Resource": resource},
    st.sampled_from(["Allow", "Deny"]),
    st.one_of(_ACTIONS, st.just("*"), st.just("sqs:*")),
    _RESOURCES,
)


@given(st.lists(_STATEMENTS, max_size=6), _ACTIONS, _RESOURCES, st.randoms())
def test_the_decision_depends_on_the_statements_not_their_order_or_grouping(found, action, resource, rnd):
    one_policy = evaluate([{"Statement": found}], action, resource)
    shuffled = list(found)
    rnd.shuffle(shuffled)
    assert evaluate([{"Statement": [s]} for s in shuffled], action, resource) == one_policy
    if any(statement_effect(s, action, resource) == "Deny" for s in found):
        assert one_policy == "explicit-deny"
