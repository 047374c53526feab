"""Pure parts: names, settings validation, policy documents, the deployment package."""

from __future__ import annotations

import zipfile
from io import BytesIO

import pytest

from orderflow.arns import Arns
from orderflow.errors import ConfigError
from orderflow.provision import policies
from orderflow.provision.package import build_package
from orderflow.stack import StackConfig, StackSettings


def test_default_stack_uses_the_guides_names():
    c = StackConfig()
    assert (c.table_name, c.topic_name, c.queue_name, c.dlq_name, c.function_name, c.role_name) == (
        "Orders",
        "OrderTopic",
        "OrderQueue",
        "OrderQueueDLQ",
        "ProcessOrderFunction",
        "ProcessOrderFunction-role",
    )
    assert c.log_group_name == "/aws/lambda/ProcessOrderFunction"


def test_other_stacks_prefix_every_name():
    c = StackConfig("dev")
    assert (c.table_name, c.role_name, c.log_group_name) == (
        "dev-Orders",
        "dev-ProcessOrderFunction-role",
        "/aws/lambda/dev-ProcessOrderFunction",
    )


@pytest.mark.parametrize("name", ["", "1abc", "a b", "x" * 33, "a_b"])
def test_invalid_stack_names_are_refused(name):
    with pytest.raises(ConfigError):
        StackConfig(name)


def test_visibility_timeout_below_six_times_function_timeout_is_refused():
    with pytest.raises(ConfigError, match=r"below 6 x the function timeout \(10s\)"):
        StackSettings(function_timeout=10, visibility_timeout=59).validate()
    assert StackSettings(function_timeout=10, visibility_timeout=60).validate() == []


def test_deprecated_runtime_is_accepted_with_a_warning():
    [warning] = StackSettings(runtime="python3.9").validate()
    assert "deprecated" in warning
    with pytest.raises(ConfigError):
        StackSettings(runtime="nodejs20.x").validate()


def test_batch_size_above_ten_needs_a_batching_window():
    with pytest.raises(ConfigError, match="batching window"):
        StackSettings(batch_size=100).validate()
    StackSettings(batch_size=100, batching_window=1).validate()


def test_inline_policies_name_only_this_stacks_arns():
    arns = Arns("aws", "ap-south-1", "111122223333")
    documents = policies.function_inline_policies(StackConfig("blue"), arns)
    for document in documents.values():
        for statement in document["Statement"]:
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert all("*" not in action for action in actions)
            assert statement["Resource"] != "*"
            assert ":111122223333:" in statement["Resource"] and "blue-" in statement["Resource"]


def test_queue_policy_merge_keeps_other_statements_and_replaces_ours():
    other = {"Sid": "theirs", "Effect": "Allow", "Principal": "*", "Action": "sqs:SendMessage", "Resource": "q"}
    stale = policies.topic_send_statement("q", "old-topic")
    merged = policies.with_statement(
        {"Version": "2012-10-17", "Statement": [other, stale]}, policies.topic_send_statement("q", "new-topic")
    )
    assert merged["Statement"][0] == other
    assert policies.our_statement(merged)["Condition"]["ArnEquals"]["aws:SourceArn"] == "new-topic"
    assert policies.without_our_statement(merged)["Statement"] == [other]
    assert policies.without_our_statement({"Statement": [stale]}) is None


def test_package_is_reproducible_and_holds_only_the_handler():
    first, second = build_package(), build_package()
    assert first.zip_bytes == second.zip_bytes
    names = zipfile.ZipFile(BytesIO(first.zip_bytes)).namelist()
    assert names == ["index.py"]


def test_an_arn_parses_into_its_six_parts_and_the_resource_keeps_its_colons():
    from orderflow.arns import Arns, parse_arn

    arns = Arns("aws-cn", "cn-north-1", "111122223333")
    function = parse_arn(arns.function("shop-ProcessOrderFunction"))
    assert (function.partition, function.service, function.region, function.account) == (
        "aws-cn",
        "lambda",
        "cn-north-1",
        "111122223333",
    )
    assert function.resource == "function:shop-ProcessOrderFunction" and function.name == "shop-ProcessOrderFunction"
    assert parse_arn(arns.queue("q")).name == "q" and parse_arn(arns.role("r")).name == "r"
    assert parse_arn(arns.log_streams("/aws/lambda/f")).resource == "log-group:/aws/lambda/f:*"
    assert parse_arn(arns.role("r")).region == ""
    with pytest.raises(ValueError):
        parse_arn("OrderQueue")


@pytest.mark.parametrize("address", ["a@x.com\n", "a@x.com ", "a\x01@x.com", "a@x", "@x.com", "a@@x.com"])
def test_an_alarm_email_sns_could_not_mail_is_refused(address):
    from orderflow.errors import ConfigError
    from orderflow.stack import StackSettings

    with pytest.raises(ConfigError, match="is not an email address"):
        StackSettings(alarm_email=address).validate()
    assert StackSettings(alarm_email="ops+dlq@example.co.uk").validate() == []
    assert StackSettings(alarm_email="").validate() == StackSettings().validate() == []
