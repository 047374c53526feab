"""Where moto differs from AWS in ways that matter to the pipeline, the embedded server behaves like AWS.

Applied while an embedded AWS runs (`PATCHES.active()`, one reversible set per feature) and undone when the last
one stops, so unit tests with mock_aws see moto as it is, whatever ran before them. Each patch is a debt on moto's
internals: `check_targets()` proves at start-up that every target still has the shape the patch was written for (else
one line names the moto version), `tests/unit/test_embedded_enforcement.py` tests each patched behaviour in-process,
`tests/unit/conftest.py` fails any test after which a patch outlived its embedded AWS, and pyproject.toml pins the
minor version they were tested with (MOTO_REQUIREMENT).
"""

from __future__ import annotations

import base64
import functools
import importlib
import inspect
import json
import logging
import re
import threading
import time
from collections.abc import Callable
from typing import Any

from orderflow.arns import parse_arn
from orderflow.errors import EndpointError
from orderflow.iam.questions import topic_may_send
from orderflow.local.patches.patching import Patch, Patches, PatchSet

log = logging.getLogger("orderflow.local")

TESTED_MOTO = "5.2"
MOTO_REQUIREMENT = "moto[server]>=5.2.1,<5.3"  # as pinned in pyproject.toml

# The realistic control plane (realism.services.RealisticAws) under `local start --realistic`; None: moto's own.
_realistic: Any = None
# LastProcessingResult of each event source mapping (by UUID), as orderflow's pollers last saw it.
_processing_results: dict[str, str] = {}


def report_processing_result(uuid: str, result: str) -> None:
    _processing_results[uuid] = result


# (module, class, attribute, what the patch relies on: parameter names, or names the source must mention)
_TARGETS: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    ("moto.sqs.models", "Queue", "__init__", ("self._messages", "self.lambda_event_source_mappings")),
    ("moto.sqs.models", "Queue", "_set_attributes", ("self", "attributes", "now")),
    ("moto.sqs.models", "Queue", "delete_message", ("self", "receipt_handle")),
    # Read by the copied delete_message (_make_queue_operations_scale):
    (
        "moto.sqs.models",
        "Queue",
        "__init__",
        ("self.deleted_messages", "self._pending_messages", "self._messages_lock", "self._messages"),
    ),
    ("moto.sqs.models", "Queue", "pending_messages", ()),
    # Read by persistence.forgive_interrupted_receives (a restart does not charge the receive it interrupted):
    ("moto.sqs.models", "Message", "mark_received", ("self.approximate_receive_count", "self.change_visibility")),
    ("moto.sqs.models", "Message", "change_visibility", ("self.visible_at",)),
    ("moto.sqs.models", "Message", "all_receipt_handles", ()),
    ("moto.sqs.models", "Queue", "policy", ()),
    ("moto.sqs.models", "Message", "had_receipt_handle", ("self", "receipt_handle")),
    ("moto.sqs.models", "SQSBackend", "is_message_valid_based_on_retention_period", ("self", "queue_name", "message")),
    ("moto.sqs.models", "SQSBackend", "get_queue", ("self", "queue_name")),
    # Read by queue_access.py, the pollers' in-process SQS client:
    (
        "moto.sqs.models",
        "SQSBackend",
        "receive_message",
        ("self", "queue_name", "count", "wait_seconds_timeout", "visibility_timeout", "message_attribute_names"),
    ),
    ("moto.sqs.models", "SQSBackend", "delete_message_batch", ("self", "queue_name", "receipts")),
    ("moto.sqs.models", "Queue", "wait_for_messages", ("self", "timeout")),
    ("moto.sqs.models", "SQSBackend", "change_message_visibility_batch", ("self", "queue_name", "entries")),
    (
        "moto.sqs.models",
        "Message",
        "__init__",
        ("self.id", "self.receipt_handle", "self.sender_id", "self.approximate_receive_count", "self.group_id"),
    ),
    ("moto.sns.models", "Subscription", "publish", ("self", "message", "message_id")),
    ("moto.awslambda.models", "LambdaFunction", "invoke", ("self", "body", "request_headers", "response_headers")),
    ("moto.awslambda.models", "EventSourceMapping", "get_configuration", ("self",)),
    ("moto.awslambda.models", "LambdaFunction", "get_code", ("self.reserved_concurrency",)),
    ("moto.awslambda.models", "LambdaFunction", "update_function_code", ("self", "updated_spec")),
    # Read by the realistic control plane (realism/), which overlays AWS's transient states:
    ("moto.awslambda.models", "LambdaFunction", "get_configuration", ("self", "on_create")),
    ("moto.awslambda.models", "LambdaFunction", "__init__", ("self.region", "self.function_name")),
    ("moto.dynamodb.models.table", "Table", "describe", ("self", "base_key")),
    ("moto.dynamodb.models.table", "Table", "__init__", ("self.region_name", "self.name")),
    ("moto.dynamodb.models", "DynamoDBBackend", "delete_table", ("self", "name")),
    ("moto.awslambda.models", "LambdaBackend", "delete_event_source_mapping", ("self", "uuid")),
    ("moto.awslambda.models", "LambdaBackend", "__init__", ("self._event_source_mappings",)),
    (
        "moto.awslambda.models",
        "EventSourceMapping",
        "__init__",
        ("self.uuid", "self.event_source_arn", "self.function_arn"),
    ),
    ("moto.iam.models", "IAMBackend", "get_role_policy", ("self", "role_name", "policy_name")),
    ("moto.sts.models", "STSBackend", "get_assumed_role_from_access_key", ("self", "access_key_id")),
    ("moto.iam.models", "IAMBackend", "get_role_by_arn", ("self", "arn")),
    ("moto.iam.models", "IAMBackend", "list_attached_role_policies", ("self", "role_name")),
    # CloudWatch's percentiles (cloudwatch/statistics.py) and SQS's message counters (cloudwatch/queue_metrics.py):
    ("moto.cloudwatch.models", "Statistics", "get_statistics_for_type", ("self", "stat")),
    ("moto.cloudwatch.models", "Statistics", "metric_single_values_list", ()),
    ("moto.cloudwatch.responses", "CloudWatchResponse", "get_metric_statistics", ("ExtendedStatistics",)),
    ("moto.cloudwatch.models", "CloudWatchBackend", "get_all_metrics", ("self",)),
    ("moto.cloudwatch.models", "CloudWatchBackend", "put_metric_alarm", ("self", "name")),
    ("moto.cloudwatch.models", "Alarm", "__init__", ("self.state_value", "self.state_reason")),
    ("moto.sqs.models", "SQSBackend", "send_message", ("self", "queue_name", "message_body")),
    (
        "moto.moto_server.werkzeug_app",
        "DomainDispatcherApplication",
        "get_backend_for_host",
        ("self.backend_url_patterns", "backends.list_of_moto_modules()"),
    ),
)


def check_targets() -> None:
    """Every patched or read moto internal still exists with the shape orderflow was written against."""
    import importlib

    from moto import __version__ as moto_version

    from orderflow.local.patches import cloudformation

    for module_name, class_name, attribute, needs in (*_TARGETS, *cloudformation.TARGETS):
        problem = None
        try:
            target = getattr(getattr(importlib.import_module(module_name), class_name), attribute)
        except (ImportError, AttributeError):
            problem = "is missing"
        else:
            if needs and callable(target):
                if needs[0].startswith("self.") or needs[0][0].isupper():
                    source = inspect.getsource(target)
                    absent = [n for n in needs if n not in source]
                else:
                    absent = [n for n in needs if n not in inspect.signature(target).parameters]
                if absent:
                    problem = f"no longer has {', '.join(absent)}"
        if problem:
            raise _moto_changed(moto_version, f"{module_name}.{class_name}.{attribute} {problem}")
    cloudformation.check_unclaimed()
    _check_sends_read_only_deduplication(moto_version)


def _moto_changed(moto_version: str, what: str) -> EndpointError:
    """The one-line start-up error for a moto internal that is not what orderflow was written against."""
    return EndpointError(
        f"The embedded AWS was tested with moto {TESTED_MOTO}.x; in moto {moto_version} {what}: "
        f"pip install '{MOTO_REQUIREMENT}'"
    )


def _check_sends_read_only_deduplication(moto_version: str) -> None:
    """The send patch holds only while a send reads no queue attribute but ContentBasedDeduplication."""
    from moto.sqs.models import Queue, SQSBackend

    for method in (SQSBackend.send_message, SQSBackend._validate_message, Queue.add_message):
        reads = re.findall(r"\.attributes\b(?:\.get\(\"(\w+)\"\))?", inspect.getsource(method))
        if any(read != "ContentBasedDeduplication" for read in reads):
            what = f"{method.__qualname__} reads queue attributes orderflow does not provide during a send"
            raise _moto_changed(moto_version, what)


# Returns the running Lambda runtime's FunctionHost (or None while it is stopped); set by the embedded server.
_function_host: Callable[[], Any] | None = None


def use_realistic(realistic: Any) -> None:
    """Reads report the control plane's transient states (Pending, Creating, CREATING, …) while it is set."""
    global _realistic
    _realistic = realistic


def route_invocations_to(function_host: Callable[[], Any]) -> None:
    global _function_host
    _function_host = function_host


def _sqs_as_aws() -> list[Patch]:
    from moto.sqs.models import Queue

    # moto invokes SQS-triggered functions itself, inside SendMessage/Publish: once, without retries, burning
    # receive counts (or deleting the messages unprocessed). orderflow's runtime polls instead, as AWS does, so the
    # queue never learns about mappings: reads give an empty dict and moto's own assignment is ignored.
    no_mappings = property(lambda self: {}, lambda self, value: None)

    # moto clears a queue's Policy on any SetQueueAttributes call that omits it; AWS keeps it.
    original_set_attributes = Queue._set_attributes

    def set_attributes_keeping_policy(self, attributes, now=None):  # type: ignore[no-untyped-def]
        policy = getattr(self, "policy", None)
        original_set_attributes(self, attributes, now)
        if "Policy" not in attributes:
            self.policy = policy

    return [
        Patch(Queue, "lambda_event_source_mappings", no_mappings),
        Patch(Queue, "_set_attributes", set_attributes_keeping_policy),
    ]


def _elsewhere(module: str, builder: str) -> Callable[[], list[Patch]]:
    """A patch set kept in a module of its own (imported when applied: it imports moto)."""
    return lambda: getattr(importlib.import_module(f"orderflow.local.patches.{module}"), builder)()


def _patch_sets() -> list[PatchSet]:
    """One set per feature, in the order they apply (a later one may wrap an earlier one's function)."""
    return [
        PatchSet("sqs: as AWS", _sqs_as_aws),
        PatchSet("server: routing without a folder listing", _route_without_listing_folders),
        PatchSet("sqs: operations that scale", _make_queue_operations_scale),
        PatchSet("sqs: one receive at a time per queue", _elsewhere("sqs_receive", "one_receive_at_a_time")),
        PatchSet("lambda: invocations in orderflow's runtime", _run_invocations_in_orderflows_runtime),
        PatchSet("sns: only what the queue policy allows", _deliver_only_what_the_queue_policy_allows),
        PatchSet("lambda: last processing result", _report_last_processing_result),
        PatchSet("lambda, dynamodb: transient states", _report_transient_states),
        PatchSet("cloudwatch: percentiles", _compute_percentiles),
        PatchSet("cloudwatch: alarms start without data", _alarms_start_without_data),
        PatchSet("sqs: message counters", _count_queue_messages),
        PatchSet("cloudformation: properties moto drops", _elsewhere("cloudformation", "properties_moto_drops")),
        PatchSet("cloudformation: stack tags", _elsewhere("cloudformation", "stack_tags")),
        PatchSet("lambda: a reserved concurrency of 0", _elsewhere("lambda_concurrency", "report_reservation_of_zero")),
        PatchSet(
            "lambda: architectures on a code update",
            _elsewhere("lambda_architecture", "apply_architectures_on_code_update"),
        ),
    ]


def _forget() -> None:
    """The last embedded AWS stopped: nothing of its state outlives it."""
    use_realistic(None)
    global _function_host
    _function_host = None
    _processing_results.clear()


def patched_attributes() -> list[tuple[type, str]]:
    """Every (class, attribute) the patch sets replace (built, not applied): what a leak check compares."""
    return [(p.owner, p.attribute) for patch_set in _patch_sets() for p in patch_set.build()]


# Entered by each embedded AWS when it starts, left when it stops.
PATCHES = Patches(_patch_sets, check_targets, forget=_forget)


def queue_policy_allows_topic(queue_arn: str, topic_arn: str) -> bool:
    from moto.sqs.models import sqs_backends

    arn = parse_arn(queue_arn)
    policy = sqs_backends[arn.account][arn.region].get_queue(arn.resource).policy
    if _realistic is not None:
        policy = _realistic.queue_policy_in_effect(queue_arn, policy)
    return topic_may_send(json.loads(policy or "{}"), queue_arn, topic_arn).allowed


def _deliver_only_what_the_queue_policy_allows() -> list[Patch]:
    """moto delivers SNS messages to a queue whatever its policy says; AWS drops them (and does not retry: a
    permission refusal is a client-side error) unless the queue policy lets the topic send."""
    from moto.sns.models import Subscription
    from moto.sqs.exceptions import QueueDoesNotExist

    original_publish = Subscription.publish

    def publish(self, message, message_id, *args, **kwargs):  # type: ignore[no-untyped-def]
        if self.protocol == "sqs":
            try:
                allowed = queue_policy_allows_topic(self.endpoint, self.topic.arn)
            except QueueDoesNotExist:
                allowed = True  # moto's own handling of a missing queue applies
            if not allowed:
                log.warning(
                    "SNS dropped message %s from %s to %s: the queue policy does not allow sns.amazonaws.com to "
                    "call sqs:SendMessage for this topic",
                    message_id,
                    self.topic.arn,
                    self.endpoint,
                )
                return None
        return original_publish(self, message, message_id, *args, **kwargs)

    return [Patch(Subscription, "publish", publish)]


def _report_last_processing_result() -> list[Patch]:
    """moto always answers LastProcessingResult null; AWS reports what the mapping's pollers last met."""
    from moto.awslambda.models import EventSourceMapping

    original = EventSourceMapping.get_configuration

    def get_configuration(self):  # type: ignore[no-untyped-def]
        configuration = original(self)
        if self.uuid in _processing_results:
            configuration["LastProcessingResult"] = _processing_results[self.uuid]
        plane = _realistic.plane if _realistic is not None else None
        state = plane.state("mapping", self.uuid) if plane is not None else None
        if state is not None:
            configuration["State"] = state
        if plane is not None:  # why it is as it is: the user's doing, or the problem Lambda met
            configuration["StateTransitionReason"] = plane.reason("mapping", self.uuid) or "USER_INITIATED"
        return configuration

    return [Patch(EventSourceMapping, "get_configuration", get_configuration)]


def _report_transient_states() -> list[Patch]:
    """Under `--realistic`, functions and tables report AWS's transient states (moto's are always final)."""
    from moto.awslambda.models import LambdaFunction
    from moto.dynamodb.models.table import Table

    original_function = LambdaFunction.get_configuration

    def function_configuration(self, on_create: bool = False):  # type: ignore[no-untyped-def]
        configuration = original_function(self, on_create)
        state = _realistic.plane.state("function", (self.region, self.function_name)) if _realistic else None
        if state == "Pending":
            configuration.update(
                State="Pending", StateReason="The function is being created.", StateReasonCode="Creating"
            )
            configuration.pop("LastUpdateStatus", None)
        elif state == "InProgress":
            configuration.update(LastUpdateStatus="InProgress", LastUpdateStatusReason="The function is being updated.")
        elif _realistic and _realistic.plane.idle("function", (self.region, self.function_name), "function_inactive"):
            configuration.update(State="Inactive", StateReason="The function is inactive.", StateReasonCode="Idle")
        return configuration

    original_describe = Table.describe

    def describe(self, base_key: str = "TableDescription"):  # type: ignore[no-untyped-def]
        description = original_describe(self, base_key)
        state = _realistic.plane.state("table", (self.region_name, self.name)) if _realistic else None
        if state is not None:
            description[base_key]["TableStatus"] = state
        return description

    return [Patch(LambdaFunction, "get_configuration", function_configuration), Patch(Table, "describe", describe)]


class _VisibleMessages:
    """moto's `Queue.messages`, lazily: ReceiveMessage stops at the first `count` visible messages instead of
    first building the list of every visible message (O(queue length) per receive)."""

    def __init__(self, messages: list) -> None:
        self._messages = list(messages)  # a C-speed snapshot: safe against concurrent deletes

    def __iter__(self):  # type: ignore[no-untyped-def]
        return (m for m in self._messages if m.visible and not m.delayed)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    def __bool__(self) -> bool:
        return any(True for _ in self)


def _make_queue_operations_scale() -> list[Patch]:
    """With thousands of messages queued, moto's receive and delete scan the whole queue in Python (a receive
    even counts all messages once per message it returns): 10,000 orders took 7 minutes, mostly there. Same
    semantics, early exit."""
    from moto.sqs.exceptions import ReceiptHandleIsInvalid
    from moto.sqs.models import Queue

    def delete_message(self, receipt_handle: str) -> None:  # type: ignore[no-untyped-def]
        if receipt_handle in self.deleted_messages:
            return  # deleting twice succeeds, as on AWS
        with self._messages_lock:
            for index, message in enumerate(self._messages):
                if message.had_receipt_handle(receipt_handle):
                    self.pending_messages.discard(message)
                    self.deleted_messages.update(message.all_receipt_handles)
                    del self._messages[index]
                    return
        raise ReceiptHandleIsInvalid()

    from moto.core.utils import unix_time
    from moto.sqs.models import SQSBackend

    def is_message_valid_based_on_retention_period(self, queue_name: str, message) -> bool:  # type: ignore[no-untyped-def]
        # moto computes every queue attribute (counting all messages) to read this one, once per received message.
        retention = int(self.get_queue(queue_name).message_retention_period)
        return retention + message.sent_timestamp / 1000 > unix_time()

    return [
        Patch(Queue, "messages", property(lambda self: _VisibleMessages(self._messages))),
        Patch(Queue, "delete_message", delete_message),
        Patch(SQSBackend, "is_message_valid_based_on_retention_period", is_message_valid_based_on_retention_period),
        *_sends_read_only_the_configuration(),
    ]


def _route_without_listing_folders() -> list[Patch]:
    """moto's server routes every request by first listing moto's package folder (listdir and an isdir per entry,
    about 0.8 ms): the folders a running process imported from do not change, so they are listed once."""
    from moto import backends

    folders = tuple(backends.list_of_moto_modules())
    return [Patch(backends, "list_of_moto_modules", lambda: folders)]  # type: ignore[arg-type]


# Set while SQSBackend.send_message runs on this thread.
_sending = threading.local()


def _sends_read_only_the_configuration() -> list[Patch]:
    """moto's send (and SNS's delivery to a queue) reads `Queue.attributes` for ContentBasedDeduplication alone, and
    that property counts every message three times: a burst of N orders cost O(N²). During a send it holds only
    what a send reads (check_targets guards that this is still all it reads)."""
    from moto.sqs.models import Queue, SQSBackend

    original_send = SQSBackend.send_message
    every_attribute = Queue.attributes

    @functools.wraps(original_send)
    def send_message(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        _sending.active = True
        try:
            return original_send(self, *args, **kwargs)
        finally:
            _sending.active = False

    def attributes(self) -> dict[str, Any]:  # type: ignore[no-untyped-def]
        if not getattr(_sending, "active", False):
            return every_attribute.fget(self)
        if not self.fifo_queue:
            return {}  # a standard queue has no ContentBasedDeduplication attribute
        return {"ContentBasedDeduplication": str(bool(self.content_based_deduplication)).lower()}

    return [Patch(SQSBackend, "send_message", send_message), Patch(Queue, "attributes", property(attributes))]


def _run_invocations_in_orderflows_runtime() -> list[Patch]:
    """The Invoke API (`aws lambda invoke`) runs the deployed code in orderflow's runtime, as the SQS pollers do,
    instead of moto's Docker container or its canned "Simple Lambda happy path OK"."""
    from moto.awslambda.models import LambdaFunction

    from orderflow.local.runtime.logs import report_lines

    def invoke(self, body, request_headers, response_headers):  # type: ignore[no-untyped-def]
        host = _function_host() if _function_host else None
        if host is None:
            response_headers["x-amz-function-error"] = "Unhandled"
            error = {"errorType": "Runtime.Unavailable", "errorMessage": "orderflow's Lambda runtime is stopped"}
            return json.dumps(error).encode()
        event = json.loads(body) if body else {}
        if request_headers.get("x-amz-invocation-type") == "Event":
            threading.Thread(target=host.invoke, args=(self.function_arn, event), daemon=True).start()
            return b""
        started_ms = int(time.time() * 1000)
        invocation = host.invoke(self.function_arn, event)
        if request_headers.get("x-amz-log-type") == "Tail":
            lines = "\n".join(line for _, line in report_lines(host.spec(self.function_arn), invocation, started_ms))
            response_headers["x-amz-log-result"] = base64.b64encode(lines.encode()[-4096:]).decode()
        if not invocation.succeeded:
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps(invocation.error).encode()
        return json.dumps(invocation.payload).encode()

    return [Patch(LambdaFunction, "invoke", invoke)]


def _compute_percentiles() -> list[Patch]:
    """moto answers no percentile (`p95`) in GetMetricData and no ExtendedStatistics in GetMetricStatistics;
    CloudWatch computes them from the published values (Lambda's Duration percentiles, for one)."""
    from moto.cloudwatch.models import Statistics
    from moto.cloudwatch.responses import CloudWatchResponse

    from orderflow.local.cloudwatch.statistics import percentile, percentile_of

    original_statistic = Statistics.get_statistics_for_type

    @functools.wraps(original_statistic)
    def get_statistics_for_type(self, stat):  # type: ignore[no-untyped-def]
        rank = percentile_of(stat)
        if rank is None:
            return original_statistic(self, stat)
        return percentile(self.metric_single_values_list, rank)

    # Read by moto's serializer for each datapoint's ExtendedStatistics member.
    extended_statistics = property(
        lambda self: (
            {s: percentile(self.metric_single_values_list, percentile_of(s) or 0) for s in self.extended} or None
        )
    )
    original_response = CloudWatchResponse.get_metric_statistics

    @functools.wraps(original_response)
    def get_metric_statistics(self):  # type: ignore[no-untyped-def]
        extended = tuple(s for s in self._get_param("ExtendedStatistics") or [] if percentile_of(s) is not None)
        result = original_response(self)
        for datapoint in result.result["Datapoints"]:
            datapoint.extended = extended
        return result

    return [
        Patch(Statistics, "get_statistics_for_type", get_statistics_for_type),
        Patch(Statistics, "extended_statistics", extended_statistics),
        Patch(Statistics, "extended", ()),
        Patch(CloudWatchResponse, "get_metric_statistics", get_metric_statistics),
    ]


def _count_queue_messages() -> list[Patch]:
    """SQS's NumberOfMessagesSent / Received / Deleted and NumberOfEmptyReceives, which moto does not keep: sends
    through the API and from SNS count, a redrive policy's move to the DLQ does not (as on AWS)."""
    from moto.sqs.models import Queue, SQSBackend

    from orderflow.local.cloudwatch.queue_metrics import COUNTERS

    original_send = SQSBackend.send_message
    original_receive = SQSBackend.receive_message
    original_delete = Queue.delete_message

    @functools.wraps(original_send)
    def send_message(self, queue_name, message_body, *args, **kwargs):  # type: ignore[no-untyped-def]
        message = original_send(self, queue_name, message_body, *args, **kwargs)
        COUNTERS.add(self.get_queue(queue_name).queue_arn, "NumberOfMessagesSent")
        return message

    @functools.wraps(original_receive)
    def receive_message(self, queue_name, *args, **kwargs):  # type: ignore[no-untyped-def]
        messages = original_receive(self, queue_name, *args, **kwargs)
        arn = self.get_queue(queue_name).queue_arn
        if messages:
            COUNTERS.add(arn, "NumberOfMessagesReceived", len(messages))
        else:
            COUNTERS.add(arn, "NumberOfEmptyReceives")
        return messages

    @functools.wraps(original_delete)
    def delete_message(self, receipt_handle):  # type: ignore[no-untyped-def]
        already = receipt_handle in self.deleted_messages
        original_delete(self, receipt_handle)
        if not already:
            COUNTERS.add(self.queue_arn, "NumberOfMessagesDeleted")

    return [
        Patch(SQSBackend, "send_message", send_message),
        Patch(SQSBackend, "receive_message", receive_message),
        Patch(Queue, "delete_message", delete_message),
    ]


def _alarms_start_without_data() -> list[Patch]:
    """A new alarm is INSUFFICIENT_DATA until its first evaluation, and updating an alarm keeps its state
    (CloudFormation User Guide, AWS::CloudWatch::Alarm); moto starts every alarm, new or replaced, at OK."""
    from moto.cloudwatch.models import CloudWatchBackend

    original = CloudWatchBackend.put_metric_alarm

    @functools.wraps(original)
    def put_metric_alarm(self, name, *args, **kwargs):  # type: ignore[no-untyped-def]
        previous = self.alarms.get(name)
        alarm = original(self, name, *args, **kwargs)
        if previous is not None:
            alarm.state_value, alarm.state_reason = previous.state_value, previous.state_reason
            alarm.state_reason_data = previous.state_reason_data
            alarm.state_updated_timestamp = previous.state_updated_timestamp
            alarm.history = previous.history
        else:
            alarm.state_value = "INSUFFICIENT_DATA"
        return alarm

    return [Patch(CloudWatchBackend, "put_metric_alarm", put_metric_alarm)]
