"""The IAM evaluator's conformance table: each case encodes a rule or an example of the IAM User Guide, cited by the
page it comes from, plus properties any evaluator of AWS's logic must have (hypothesis)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orderflow.iam.context import UNDECIDABLE
from orderflow.iam.documents import MalformedPolicy, validate
from orderflow.iam.evaluation import Policies, Principal, Request, decide
from orderflow.iam.questions import SNS_SERVICE, topic_may_send

GUIDE = "https://docs.aws.amazon.com/IAM/latest/UserGuide/"
EVALUATION = GUIDE + "reference_policies_evaluation-logic.html"
OPERATORS = GUIDE + "reference_policies_elements_condition_operators.html"
MULTIVALUED = GUIDE + "reference_policies_condition-single-vs-multi-valued-context-keys.html"
PRINCIPALS = GUIDE + "reference_policies_elements_principal.html"
VARIABLES = GUIDE + "reference_policies_variables.html"
BOUNDARIES = GUIDE + "access_policies_boundaries.html"
ELEMENTS = GUIDE + "reference_policies_elements.html"
NOT_PRINCIPAL = GUIDE + "reference_policies_elements_notprincipal.html"
KEYS = GUIDE + "reference_policies_condition-keys.html"
GRAMMAR = GUIDE + "reference_policies_grammar.html"

ACCOUNT = "111122223333"
TABLE = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/Orders"
QUEUE = f"arn:aws:sqs:us-east-1:{ACCOUNT}:OrderQueue"
TOPIC = f"arn:aws:sns:us-east-1:{ACCOUNT}:OrderTopic"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/Deployer"
SESSION = f"arn:aws:sts::{ACCOUNT}:assumed-role/Deployer/ci"
USER = f"arn:aws:iam::{ACCOUNT}:user/alice"
ALICE = Principal("AWS", USER, ACCOUNT)
DEPLOYER = Principal("AWS", SESSION, ACCOUNT, ROLE)


def doc(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: Any = "*", resource: Any = "*", **more: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **more}


def deny(action: Any = "*", resource: Any = "*", **more: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **more}


def when(operator: str, key: str, value: Any, effect: Any = allow) -> dict[str, Any]:
    return doc(effect(Condition={operator: {key: value}}))


@dataclass
class Case:
    page: str
    name: str
    expected: str  # allow | explicit-deny | implicit-deny
    identity: list[dict[str, Any]] = field(default_factory=list)
    resource_policy: dict[str, Any] | None = None
    boundary: dict[str, Any] | None = None
    action: str = "dynamodb:PutItem"
    resource: str = TABLE
    principal: Principal | None = ALICE
    context: dict[str, Any] = field(default_factory=dict)


def c(page: str, name: str, expected: str, *identity: dict[str, Any], **more: Any) -> Case:
    return Case(page, name, expected, list(identity), **more)


NOW = {"aws:CurrentTime": "2026-12-01T10:00:00Z", "aws:EpochTime": "1796119200"}
TLS = {"aws:SecureTransport": "true"}
IP = {"aws:SourceIp": "203.0.113.7"}
TAGS = {"aws:TagKeys": ["env", "team"]}
SQS_CONSOLE = doc({"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "SQS:SendMessage", "Resource": QUEUE,
                   "Condition": {"ArnLike": {"aws:SourceArn": TOPIC}}})  # fmt: skip

CASES = [
    # --- evaluation logic ---
    c(EVALUATION, "no policy: implicit deny", "implicit-deny"),
    c(EVALUATION, "an allow on the exact resource", "allow", doc(allow("dynamodb:PutItem", TABLE))),
    c(EVALUATION, "an allow of another action", "implicit-deny", doc(allow("dynamodb:GetItem", TABLE))),
    c(EVALUATION, "an allow on another resource", "implicit-deny", doc(allow("dynamodb:PutItem", TABLE + "2"))),
    c(EVALUATION, "an explicit deny wins over an allow", "explicit-deny", doc(allow()), doc(deny("dynamodb:*"))),
    c(EVALUATION, "a deny of another action leaves the allow", "allow", doc(allow(), deny("dynamodb:GetItem"))),
    c(
        EVALUATION,
        "a deny in the resource policy wins over an identity allow",
        "explicit-deny",
        doc(allow()),
        resource_policy=doc(deny(Principal="*")),
    ),
    c(
        EVALUATION,
        "a resource policy naming the user allows without an identity policy",
        "allow",
        resource_policy=doc(allow(Principal={"AWS": USER})),
    ),
    c(
        EVALUATION,
        "a resource policy naming only the account delegates: no allow by itself",
        "implicit-deny",
        resource_policy=doc(allow(Principal={"AWS": ACCOUNT})),
    ),
    c(
        EVALUATION,
        "a resource policy naming the account and an identity allow",
        "allow",
        doc(allow()),
        resource_policy=doc(allow(Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:root"})),
    ),
    c(
        EVALUATION,
        "a service is allowed only by the resource policy",
        "implicit-deny",
        doc(allow()),
        principal=SNS_SERVICE,
        action="sqs:SendMessage",
        resource=QUEUE,
    ),
    c(ELEMENTS, "actions match case-insensitively", "allow", doc(allow("DynamoDB:putitem", TABLE))),
    c(ELEMENTS, "resources match case-sensitively", "implicit-deny", doc(allow("dynamodb:PutItem", TABLE.lower()))),
    c(ELEMENTS, "a * in an action matches any run", "allow", doc(allow("dynamodb:Put*", TABLE))),
    c(ELEMENTS, "a ? in an action matches one character", "allow", doc(allow("dynamodb:?utItem", TABLE))),
    c(
        ELEMENTS,
        "a . in a resource is literal",
        "implicit-deny",
        doc(allow("*", TABLE.replace("Orders", "Or.ers"))),
        resource=TABLE.replace("Orders", "OrXers"),
    ),
    c(ELEMENTS, "a * in a resource spans colons and slashes", "allow", doc(allow("*", "arn:aws:dynamodb:*"))),
    c(
        ELEMENTS,
        "NotAction allows all but what it names",
        "allow",
        doc({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}),
    ),
    c(
        ELEMENTS,
        "NotAction does not allow what it names",
        "implicit-deny",
        doc({"Effect": "Allow", "NotAction": "dynamodb:*", "Resource": "*"}),
    ),
    c(
        ELEMENTS,
        "NotResource allows all but what it names",
        "implicit-deny",
        doc({"Effect": "Allow", "Action": "*", "NotResource": TABLE}),
    ),
    c(
        ELEMENTS,
        "NotResource allows other resources",
        "allow",
        doc({"Effect": "Allow", "Action": "*", "NotResource": TABLE + "2"}),
    ),
    c(
        ELEMENTS,
        "a Deny with NotAction refuses everything but it",
        "explicit-deny",
        doc(allow()),
        doc({"Effect": "Deny", "NotAction": "sqs:*", "Resource": "*"}),
    ),
    c(ELEMENTS, "several statements in one document", "allow", doc(allow("sqs:*"), allow("dynamodb:PutItem"))),
    c(ELEMENTS, "Statement as a single object", "allow", {"Version": "2012-10-17", "Statement": allow()}),
    # --- principals ---
    c(
        PRINCIPALS,
        '"*" names every principal',
        "allow",
        principal=SNS_SERVICE,
        action="sqs:SendMessage",
        resource=QUEUE,
        resource_policy=doc(allow(Principal="*")),
    ),
    c(
        PRINCIPALS,
        '{"AWS": "*"} is the same as "*" (services too)',
        "allow",
        principal=SNS_SERVICE,
        action="sqs:SendMessage",
        resource=QUEUE,
        resource_policy=doc(allow(Principal={"AWS": "*"})),
    ),
    c(
        PRINCIPALS,
        "the SQS console's subscription policy lets the topic send",
        "allow",
        principal=SNS_SERVICE,
        action="sqs:SendMessage",
        resource=QUEUE,
        resource_policy=SQS_CONSOLE,
        context={"aws:SourceArn": TOPIC},
    ),
    c(
        PRINCIPALS,
        "the console's policy refuses another topic",
        "implicit-deny",
        principal=SNS_SERVICE,
        action="sqs:SendMessage",
        resource=QUEUE,
        resource_policy=SQS_CONSOLE,
        context={"aws:SourceArn": TOPIC + "2"},
    ),
    c(
        PRINCIPALS,
        'a Deny to {"AWS": "*"} refuses a service too',
        "explicit-deny",
        principal=SNS_SERVICE,
        action="sqs:SendMessage",
        resource=QUEUE,
        resource_policy=doc(allow(Principal={"Service": "sns.amazonaws.com"}), deny(Principal={"AWS": "*"})),
    ),
    c(
        PRINCIPALS,
        "Service as a list",
        "allow",
        principal=SNS_SERVICE,
        action="sqs:SendMessage",
        resource=QUEUE,
        resource_policy=doc(allow(Principal={"Service": ["events.amazonaws.com", "sns.amazonaws.com"]})),
    ),
    c(
        PRINCIPALS,
        "another service is not named",
        "implicit-deny",
        principal=SNS_SERVICE,
        action="sqs:SendMessage",
        resource=QUEUE,
        resource_policy=doc(allow(Principal={"Service": "events.amazonaws.com"})),
    ),
    c(
        PRINCIPALS,
        "a role ARN names its sessions",
        "allow",
        principal=DEPLOYER,
        resource_policy=doc(allow(Principal={"AWS": ROLE})),
    ),
    c(
        PRINCIPALS,
        "a session ARN names that session",
        "allow",
        principal=DEPLOYER,
        resource_policy=doc(allow(Principal={"AWS": SESSION})),
    ),
    c(
        PRINCIPALS,
        "another user is not named",
        "implicit-deny",
        resource_policy=doc(allow(Principal={"AWS": f"arn:aws:iam::{ACCOUNT}:user/bob"})),
    ),
    c(
        PRINCIPALS,
        "an account id names the account's identities (delegation)",
        "allow",
        doc(allow()),
        resource_policy=doc(allow(Principal={"AWS": ACCOUNT})),
    ),
    c(
        NOT_PRINCIPAL,
        "a Deny with NotPrincipal spares whom it names",
        "allow",
        doc(allow()),
        resource_policy=doc(deny(NotPrincipal={"AWS": USER})),
    ),
    c(
        NOT_PRINCIPAL,
        "a Deny with NotPrincipal refuses everyone else",
        "explicit-deny",
        doc(allow()),
        principal=DEPLOYER,
        resource_policy=doc(deny(NotPrincipal={"AWS": USER})),
    ),
    # --- condition operators ---
    c(
        OPERATORS,
        "StringEquals holds",
        "allow",
        when("StringEquals", "aws:username", "alice"),
        context={"aws:username": "alice"},
    ),
    c(
        OPERATORS,
        "StringEquals is case-sensitive",
        "implicit-deny",
        when("StringEquals", "aws:username", "Alice"),
        context={"aws:username": "alice"},
    ),
    c(
        OPERATORS,
        "StringEqualsIgnoreCase",
        "allow",
        when("StringEqualsIgnoreCase", "aws:username", "ALICE"),
        context={"aws:username": "alice"},
    ),
    c(
        OPERATORS,
        "StringLike with wildcards",
        "allow",
        when("StringLike", "aws:username", "al*"),
        context={"aws:username": "alice"},
    ),
    c(
        OPERATORS,
        "values of one key are alternatives (OR)",
        "allow",
        when("StringEquals", "aws:username", ["bob", "alice"]),
        context={"aws:username": "alice"},
    ),
    c(
        OPERATORS,
        "a negated operator's values are a NOR",
        "explicit-deny",
        doc(allow()),
        when("StringNotEquals", "aws:RequestedRegion", ["eu-west-1", "eu-west-2"], deny),
        context={"aws:RequestedRegion": "us-east-1"},
    ),
    c(
        OPERATORS,
        "the region lock lets the allowed region through",
        "allow",
        doc(allow()),
        when("StringNotEquals", "aws:RequestedRegion", ["eu-west-1", "us-east-1"], deny),
        context={"aws:RequestedRegion": "us-east-1"},
    ),
    c(
        OPERATORS,
        "a key absent: a positive operator is false",
        "implicit-deny",
        when("StringEquals", "aws:PrincipalTag/team", "orders"),
    ),
    c(
        OPERATORS,
        "a key absent: a negated operator is true",
        "allow",
        when("StringNotEquals", "aws:PrincipalTag/team", "x"),
    ),
    c(
        OPERATORS,
        "…IfExists holds when the key is absent",
        "allow",
        when("StringEqualsIfExists", "aws:PrincipalTag/t", "x"),
    ),
    c(
        OPERATORS,
        "…IfExists tests the key when present",
        "implicit-deny",
        when("StringEqualsIfExists", "aws:PrincipalTag/t", "x"),
        context={"aws:PrincipalTag/t": "y"},
    ),
    c(
        OPERATORS,
        "NumericLessThan",
        "allow",
        when("NumericLessThan", "s3:max-keys", "10"),
        context={"s3:max-keys": "5"},
    ),
    c(
        OPERATORS,
        "NumericLessThan refuses a larger number",
        "implicit-deny",
        when("NumericLessThan", "s3:max-keys", 10),
        context={"s3:max-keys": "50"},
    ),
    c(
        OPERATORS,
        "NumericGreaterThanEquals at the bound",
        "allow",
        when("NumericGreaterThanEquals", "aws:MultiFactorAuthAge", "3600"),
        context={"aws:MultiFactorAuthAge": "3600"},
    ),
    c(
        OPERATORS,
        "NumericNotEquals",
        "allow",
        when("NumericNotEquals", "s3:max-keys", "10"),
        context={"s3:max-keys": "11"},
    ),
    c(
        OPERATORS,
        "NumericEquals compares numbers, not text",
        "allow",
        when("NumericEquals", "s3:max-keys", "10"),
        context={"s3:max-keys": "10.0"},
    ),
    c(
        OPERATORS,
        "DateGreaterThan with an ISO 8601 date",
        "allow",
        when("DateGreaterThan", "aws:CurrentTime", "2020-01-01T00:00:00Z"),
        context=NOW,
    ),
    c(
        OPERATORS,
        "a Deny before 2020 does not block today",
        "allow",
        doc(allow()),
        when("DateLessThan", "aws:CurrentTime", "2020-01-01T00:00:00Z", deny),
        context=NOW,
    ),
    c(
        OPERATORS,
        "DateLessThan with epoch seconds",
        "implicit-deny",
        when("DateLessThan", "aws:EpochTime", "1577836800"),
        context=NOW,
    ),
    c(
        OPERATORS,
        "a date without a time",
        "allow",
        when("DateGreaterThanEquals", "aws:CurrentTime", "2026-12-01"),
        context=NOW,
    ),
    c(
        OPERATORS,
        "DateNotEquals",
        "allow",
        when("DateNotEquals", "aws:CurrentTime", "2019-06-30T00:00:00Z"),
        context=NOW,
    ),
    c(OPERATORS, "Bool true", "allow", when("Bool", "aws:SecureTransport", "true"), context=TLS),
    c(OPERATORS, "Bool as a JSON boolean", "allow", when("Bool", "aws:SecureTransport", True), context=TLS),
    c(
        OPERATORS,
        "the TLS-only Deny spares a TLS request",
        "allow",
        doc(allow()),
        when("BoolIfExists", "aws:SecureTransport", "false", deny),
        context=TLS,
    ),
    c(
        OPERATORS,
        "the TLS-only Deny refuses plain HTTP",
        "explicit-deny",
        doc(allow()),
        when("Bool", "aws:SecureTransport", "false", deny),
        context={"aws:SecureTransport": "false"},
    ),
    c(
        OPERATORS,
        "BinaryEquals compares the decoded bytes",
        "allow",
        when("BinaryEquals", "k:bin", "QmluYXJ5VmFsdWU="),
        context={"k:bin": "QmluYXJ5VmFsdWU="},
    ),
    c(
        OPERATORS,
        "BinaryEquals refuses other bytes",
        "implicit-deny",
        when("BinaryEquals", "k:bin", "QmluYXJ5VmFsdWU="),
        context={"k:bin": "b3RoZXI="},
    ),
    c(
        OPERATORS,
        "IpAddress within a CIDR block",
        "allow",
        when("IpAddress", "aws:SourceIp", "203.0.113.0/24"),
        context=IP,
    ),
    c(
        OPERATORS,
        "IpAddress outside the block",
        "implicit-deny",
        when("IpAddress", "aws:SourceIp", "192.0.2.0/24"),
        context=IP,
    ),
    c(
        OPERATORS,
        "NotIpAddress refuses outside a corporate range",
        "explicit-deny",
        doc(allow()),
        when("NotIpAddress", "aws:SourceIp", ["192.0.2.0/24"], deny),
        context=IP,
    ),
    c(
        OPERATORS,
        "IpAddress with IPv6",
        "allow",
        when("IpAddress", "aws:SourceIp", "2001:db8::/32"),
        context={"aws:SourceIp": "2001:db8::1"},
    ),
    c(
        OPERATORS,
        "ArnEquals with a wildcard behaves as ArnLike",
        "allow",
        when("ArnEquals", "aws:SourceArn", "arn:aws:sns:*:111122223333:*"),
        context={"aws:SourceArn": TOPIC},
    ),
    c(
        OPERATORS,
        "ArnLike matches part by part: a short pattern does not match",
        "implicit-deny",
        when("ArnLike", "aws:SourceArn", "arn:aws:sns:us-east-1:*"),
        context={"aws:SourceArn": TOPIC},
    ),
    c(
        OPERATORS,
        "ArnLike: the resource part may hold colons",
        "allow",
        when("ArnLike", "aws:SourceArn", f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:*"),
        context={"aws:SourceArn": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:g:log-stream:s"},
    ),
    c(
        OPERATORS,
        "ArnNotEquals",
        "allow",
        when("ArnNotEquals", "aws:SourceArn", TOPIC + "2"),
        context={"aws:SourceArn": TOPIC},
    ),
    c(
        OPERATORS,
        "ArnNotLike refuses what matches",
        "implicit-deny",
        when("ArnNotLike", "aws:SourceArn", "arn:aws:sns:*:*:*"),
        context={"aws:SourceArn": TOPIC},
    ),
    c(OPERATORS, "Null true: the key is absent", "allow", when("Null", "aws:TokenIssueTime", "true")),
    c(OPERATORS, "Null false: the key is present", "implicit-deny", when("Null", "aws:TokenIssueTime", "false")),
    c(
        OPERATORS,
        "several operators: all must hold (AND)",
        "implicit-deny",
        doc(allow(Condition={"Bool": {"aws:SecureTransport": "true"}, "StringEquals": {"aws:username": "bob"}})),
        context={**TLS, "aws:username": "alice"},
    ),
    c(
        OPERATORS,
        "condition key names are case-insensitive",
        "allow",
        when("StringEquals", "AWS:UserName", "alice"),
        context={"aws:username": "alice"},
    ),
    # --- single- and multivalued keys ---
    c(
        MULTIVALUED,
        "ForAllValues: every request value in the set",
        "allow",
        when("ForAllValues:StringEquals", "aws:TagKeys", ["env", "team", "cost"]),
        context=TAGS,
    ),
    c(
        MULTIVALUED,
        "ForAllValues: one value outside the set",
        "implicit-deny",
        when("ForAllValues:StringEquals", "aws:TagKeys", ["env"]),
        context=TAGS,
    ),
    c(
        MULTIVALUED,
        "ForAllValues: the key absent is true",
        "allow",
        when("ForAllValues:StringEquals", "aws:TagKeys", "env"),
    ),
    c(
        MULTIVALUED,
        "ForAllValues: an empty list is true",
        "allow",
        when("ForAllValues:StringEquals", "aws:TagKeys", "env"),
        context={"aws:TagKeys": []},
    ),
    c(
        MULTIVALUED,
        "ForAnyValue: one value in the set",
        "allow",
        when("ForAnyValue:StringEquals", "aws:TagKeys", ["team"]),
        context=TAGS,
    ),
    c(
        MULTIVALUED,
        "ForAnyValue: the key absent is false",
        "implicit-deny",
        when("ForAnyValue:StringEquals", "aws:TagKeys", "env"),
    ),
    c(
        MULTIVALUED,
        "ForAnyValue with StringLike",
        "allow",
        when("ForAnyValue:StringLike", "aws:TagKeys", "te*"),
        context=TAGS,
    ),
    c(
        MULTIVALUED,
        "ForAllValues:StringNotEquals refuses a forbidden key",
        "implicit-deny",
        when("ForAllValues:StringNotEquals", "aws:TagKeys", "team"),
        context=TAGS,
    ),
    # --- variables ---
    c(
        VARIABLES,
        "${aws:username} in a resource",
        "allow",
        doc(allow("dynamodb:PutItem", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/${{aws:username}}")),
        resource=f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/alice",
        context={"aws:username": "alice"},
    ),
    c(
        VARIABLES,
        "a variable names only its own value",
        "implicit-deny",
        doc(allow("dynamodb:PutItem", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/${{aws:username}}")),
        resource=f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/bob",
        context={"aws:username": "alice"},
    ),
    c(
        VARIABLES,
        "${aws:PrincipalAccount} in a resource",
        "allow",
        doc(allow("*", "arn:aws:dynamodb:us-east-1:${aws:PrincipalAccount}:table/*")),
        context={"aws:PrincipalAccount": ACCOUNT},
    ),
    c(
        VARIABLES,
        "${aws:ResourceAccount} in a condition",
        "allow",
        when("StringEquals", "aws:PrincipalAccount", "${aws:ResourceAccount}"),
        context={"aws:PrincipalAccount": ACCOUNT, "aws:ResourceAccount": ACCOUNT},
    ),
    c(
        VARIABLES,
        "a 2008-10-17 document takes ${…} literally",
        "implicit-deny",
        {"Version": "2008-10-17", "Statement": [allow("*", "arn:aws:dynamodb:us-east-1:${aws:PrincipalAccount}:*")]},
        context={"aws:PrincipalAccount": ACCOUNT},
    ),
    c(
        VARIABLES,
        "a document without Version takes ${…} literally",
        "implicit-deny",
        {"Statement": [allow("*", "arn:aws:dynamodb:us-east-1:${aws:PrincipalAccount}:*")]},
        context={"aws:PrincipalAccount": ACCOUNT},
    ),
    c(
        VARIABLES,
        "${*} is a literal asterisk",
        "implicit-deny",
        doc(allow("*", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/${{*}}")),
    ),
    c(
        VARIABLES,
        "${*} matches a name that is an asterisk",
        "allow",
        doc(allow("*", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/${{*}}")),
        resource=f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/*",
    ),
    c(
        VARIABLES,
        "${?} and ${$} are literal",
        "allow",
        when("StringEquals", "k:v", "a${?}b${$}"),
        context={"k:v": "a?b$"},
    ),
    c(
        VARIABLES,
        "a default value when the key is absent",
        "allow",
        when("StringEquals", "aws:PrincipalTag/team", "${aws:username, 'nobody'}"),
        context={"aws:PrincipalTag/team": "nobody"},
    ),
    c(
        VARIABLES,
        "a variable with no value and no default matches nothing",
        "implicit-deny",
        doc(allow("*", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/${{aws:username}}")),
        resource=f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/",
    ),
    # --- permissions boundaries ---
    c(
        BOUNDARIES,
        "a boundary that allows the action lets the identity policy grant",
        "allow",
        doc(allow()),
        boundary=doc(allow("dynamodb:*")),
    ),
    c(BOUNDARIES, "a boundary grants nothing by itself", "implicit-deny", boundary=doc(allow())),
    c(
        BOUNDARIES,
        "a boundary that does not allow the action caps the identity policy",
        "implicit-deny",
        doc(allow()),
        boundary=doc(allow("sqs:*")),
    ),
    c(
        BOUNDARIES,
        "a Deny in the boundary wins",
        "explicit-deny",
        doc(allow()),
        boundary=doc(allow(), deny("dynamodb:PutItem")),
    ),
    c(
        BOUNDARIES,
        "a resource policy naming the user is not capped by the boundary",
        "allow",
        boundary=doc(allow("sqs:*")),
        resource_policy=doc(allow(Principal={"AWS": USER})),
    ),
    c(
        BOUNDARIES,
        "a resource policy naming the role is capped by the boundary",
        "implicit-deny",
        principal=DEPLOYER,
        boundary=doc(allow("sqs:*")),
        resource_policy=doc(allow(Principal={"AWS": ROLE})),
    ),
    c(
        BOUNDARIES,
        "a resource policy naming the session is not capped",
        "allow",
        principal=DEPLOYER,
        boundary=doc(allow("sqs:*")),
        resource_policy=doc(allow(Principal={"AWS": SESSION})),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_the_evaluator_decides_as_the_iam_user_guide_says(case: Case):
    policies = Policies(case.identity, case.resource_policy, case.boundary)
    verdict = decide(policies, Request(case.action, case.resource, case.principal, case.context))
    assert verdict.decision == case.expected, case.page


MALFORMED = [
    (GRAMMAR, "a lower-case effect", doc({"Effect": "deny", "Action": "*", "Resource": "*"}), "Invalid effect"),
    (GRAMMAR, "an unknown operator", when("StringEqualz", "aws:username", "x"), "Invalid Condition type"),
    (GRAMMAR, "an unknown qualifier", when("ForSomeValues:StringEquals", "aws:TagKeys", "x"), "Invalid Condition"),
    (GRAMMAR, "Null…IfExists", when("NullIfExists", "aws:TagKeys", "true"), "Invalid Condition"),
    (GRAMMAR, "no Action", doc({"Effect": "Allow", "Resource": "*"}), "must contain actions"),
    (GRAMMAR, "no Resource in an identity policy", doc({"Effect": "Allow", "Action": "*"}), "must contain resources"),
    (GRAMMAR, "a Principal in an identity policy", doc(allow(Principal="*")), "should not specify a principal"),
    (GRAMMAR, "an unknown version", {"Version": "2020-01-01", "Statement": [allow()]}, "legacy parsing"),
    (GRAMMAR, "an action without a service", doc(allow("PutItem")), "prefaced by a vendor"),
    (GRAMMAR, "no statement", {"Version": "2012-10-17", "Statement": []}, "Syntax errors"),
    (GRAMMAR, "not JSON", "{", "Syntax errors"),
]


@pytest.mark.parametrize(("page", "name", "document", "message"), MALFORMED, ids=[m[1] for m in MALFORMED])
def test_a_document_iam_would_refuse_is_refused_when_written(page, name, document, message):
    with pytest.raises(MalformedPolicy, match=message):
        validate(document, "identity")


def test_a_trust_policy_must_name_a_principal_and_a_valid_one_passes():
    with pytest.raises(MalformedPolicy, match="Principal"):
        validate(doc({"Effect": "Allow", "Action": "sts:AssumeRole"}), "trust")
    trust = doc({"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"})
    assert validate(trust, "trust") == trust


def test_a_key_verify_cannot_know_makes_the_answer_undecided_only_when_it_matters():
    org_only = doc({"Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": QUEUE,
                    "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-abc"}}})  # fmt: skip
    verdict = topic_may_send(org_only, QUEUE, TOPIC, UNDECIDABLE)
    assert not verdict.allowed and verdict.depends_on == ("aws:PrincipalOrgID",)
    both = {**org_only, "Statement": [*org_only["Statement"], allow("sqs:SendMessage", QUEUE, Principal="*")]}
    assert topic_may_send(both, QUEUE, TOPIC, UNDECIDABLE).allowed  # allowed whichever way the key goes
    assert topic_may_send(org_only, QUEUE, TOPIC).decision == "implicit-deny"  # embedded AWS: no organization


def test_the_table_is_large_enough_and_cites_its_pages():
    assert len(CASES) + len(MALFORMED) >= 80
    assert all(case.page.startswith(GUIDE) for case in CASES)


# --- properties ---
_ACTIONS = st.sampled_from(["dynamodb:PutItem", "sqs:ReceiveMessage", "sqs:SendMessage", "iam:PassRole"])
_RESOURCES = st.sampled_from([TABLE, QUEUE, ROLE, "*", f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:*"])
_CONDITIONS = st.sampled_from(
    [
        None,
        {"Bool": {"aws:SecureTransport": "false"}},
        {"StringNotEquals": {"aws:RequestedRegion": "us-east-1"}},
        {"DateLessThan": {"aws:CurrentTime": "2020-01-01T00:00:00Z"}},
        {"ForAllValues:StringEquals": {"aws:TagKeys": ["env"]}},
        {"ArnLike": {"aws:SourceArn": "arn:aws:sns:*:*:*"}},
    ]
)


def _statement(effect: str, action: str, resource: str, condition: Any) -> dict[str, Any]:
    found = {"Effect": effect, "Action": action, "Resource": resource}
    return {**found, "Condition": condition} if condition else found


_STATEMENTS = st.builds(_statement, st.sampled_from(["Allow", "Deny"]), st.one_of(_ACTIONS, st.just("*")), _RESOURCES,
                        _CONDITIONS)  # fmt: skip
_CONTEXT = st.fixed_dictionaries(
    {
        "aws:SecureTransport": st.sampled_from(["true", "false"]),
        "aws:RequestedRegion": st.sampled_from(["us-east-1", "eu-west-1"]),
    }
).map(lambda c: {**c, **NOW, "aws:SourceArn": TOPIC})


def _decide(statements: list[dict[str, Any]], boundary: list[dict[str, Any]] | None, action: str, resource: str,
            context: dict[str, Any]) -> str:  # fmt: skip
    policies = Policies([doc(*statements)] if statements else [], None, doc(*boundary) if boundary else None)
    return decide(policies, Request(action, resource, ALICE, context)).decision


@given(st.lists(_STATEMENTS, max_size=5), _STATEMENTS, _ACTIONS, _RESOURCES, _CONTEXT)
def test_adding_a_deny_never_turns_a_refusal_into_an_allow(found, extra, action, resource, context):
    before = _decide(found, None, action, resource, context)
    after = _decide([*found, {**extra, "Effect": "Deny"}], None, action, resource, context)
    assert not (before != "allow" and after == "allow")


@given(st.lists(_STATEMENTS, max_size=5), _STATEMENTS, _ACTIONS, _RESOURCES, _CONTEXT)
def test_adding_an_allow_never_turns_an_allow_into_a_refusal(found, extra, action, resource, context):
    before = _decide(found, None, action, resource, context)
    after = _decide([*found, {**extra, "Effect": "Allow"}], None, action, resource, context)
    assert not (before == "allow" and after != "allow")


@given(st.lists(_STATEMENTS, max_size=5), st.lists(_STATEMENTS, min_size=1, max_size=3), _ACTIONS, _RESOURCES, _CONTEXT)
def test_a_boundary_never_widens_what_the_identity_policies_allow(found, boundary, action, resource, context):
    if _decide(found, boundary, action, resource, context) == "allow":
        assert _decide(found, None, action, resource, context) == "allow"


@given(st.lists(_STATEMENTS, max_size=5), _ACTIONS, _RESOURCES, _CONTEXT, st.randoms())
def test_action_names_are_case_insensitive_and_resources_are_not(found, action, resource, context, rnd):
    flipped = "".join(ch.upper() if rnd.random() < 0.5 else ch.lower() for ch in action)
    assert _decide(found, None, flipped, resource, context) == _decide(found, None, action, resource, context)
    upper = resource.upper()
    if upper != resource and all(s["Resource"] not in ("*",) for s in found) and found:
        assert _decide(found, None, action, upper, context) == "implicit-deny"


def test_an_operator_added_to_iam_after_this_evaluator_makes_verify_undecided_not_a_crash():
    """Documents the embedded AWS stores are checked when written; one read from AWS may use an operator IAM added
    since: the answer is "cannot decide", never a traceback and never a guess."""
    newer = doc(
        allow("sqs:SendMessage", QUEUE, Principal="*", Condition={"StringMatchesRegex": {"aws:SourceArn": "x"}})
    )
    verdict = topic_may_send(newer, QUEUE, TOPIC, UNDECIDABLE)
    assert not verdict.allowed and verdict.depends_on == ("a condition operator this evaluator does not know",)
