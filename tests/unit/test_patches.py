"""moto's patches are reversible sets: applied while an embedded AWS runs, undone when the last one stops (no
module-scoped embedded AWS here, so each test sees the patches come and go)."""

from __future__ import annotations

import json

import boto3
import pytest

from orderflow.local.patches.patching import Patch, Patches, PatchSet


def test_a_plain_mock_aws_test_after_an_embedded_aws_sees_moto_unpatched():
    """The patches live exactly as long as the embedded AWS: moto's own behaviour comes back when it stops."""
    from moto import mock_aws
    from moto.sqs.models import Queue

    from orderflow.local.server.embedded import EmbeddedAws
    from tests.conftest import leaked_patches

    own_delete = Queue.__dict__["delete_message"]
    with EmbeddedAws(runtime=False, cloudwatch=False):
        assert Queue.__dict__["delete_message"] is not own_delete
    assert Queue.__dict__["delete_message"] is own_delete and leaked_patches() == []
    with mock_aws():
        sqs = boto3.client("sqs", region_name="eu-west-2")
        url = sqs.create_queue(QueueName="plain", Attributes={"Policy": json.dumps({"Statement": []})})["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "40"})
        # moto as it is drops the policy on a call that omits it (the embedded AWS keeps it, as AWS does)
        assert "Policy" not in sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]


def test_two_embedded_aws_side_by_side_keep_the_patches_until_the_last_stops():
    from orderflow.local.patches import moto as moto_patches
    from orderflow.local.server.embedded import EmbeddedAws

    first = EmbeddedAws(runtime=False, cloudwatch=False).start()
    second = EmbeddedAws(runtime=False, cloudwatch=False).start()
    first.stop()
    assert moto_patches.PATCHES.applied
    second.stop()
    assert not moto_patches.PATCHES.applied


def test_a_patch_puts_back_what_was_there_and_removes_what_was_not():
    class Target:
        def f(self):
            return "own"

    patches = Patches(
        lambda: [PatchSet("t", lambda: [Patch(Target, "f", lambda self: "patched"), Patch(Target, "g", 1)])],
        check=lambda: None,
    )
    with patches.active():
        assert Target().f() == "patched" and Target.g == 1
    assert Target().f() == "own" and not hasattr(Target, "g")


def test_a_failed_guard_applies_nothing():
    class Target:
        value = "own"

    def refuse():
        raise RuntimeError("moto changed")

    patches = Patches(lambda: [PatchSet("t", lambda: [Patch(Target, "value", "patched")])], check=refuse)
    with pytest.raises(RuntimeError):
        patches.enter()
    assert Target.value == "own" and not patches.applied


def test_routing_lists_motos_folders_once_and_the_listing_is_the_same():
    from moto import backends

    from orderflow.local.server.embedded import EmbeddedAws

    own = backends.list_of_moto_modules
    listed = list(own())
    with EmbeddedAws(runtime=False, cloudwatch=False) as aws:
        assert backends.list_of_moto_modules is not own and list(backends.list_of_moto_modules()) == listed
        sqs = boto3.client("sqs", endpoint_url=aws.endpoint, region_name="eu-west-2")
        assert sqs.create_queue(QueueName="routed")["QueueUrl"].endswith("/routed")  # requests still find SQS
    assert backends.list_of_moto_modules is own
