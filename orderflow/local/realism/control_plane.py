"""`local start --realistic`: the embedded AWS as slow and eventually consistent as AWS's control plane.

moto applies every call at once. AWS does not: a new role is not assumable for a while, new policies take a while to
apply, functions are Pending, mappings Creating, tables CREATING, a deleted queue's name stays blocked. `DELAYS` is
the one table of those durations, each with its source (docs/fidelity.md repeats it); `--time-scale` multiplies them.

Two pieces: `ControlPlane` holds the resources that are in transition (pure bookkeeping on an injectable clock), and
`RealisticAws`, a WSGI middleware in front of moto, refuses what AWS refuses mid-transition, starts transitions
after successful writes, and finishes deferred deletes. The reads (GetFunction, DescribeTable, mapping State) see
the transitions through moto_patches, so every client, the AWS CLI included, sees the same states.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from orderflow.arns import parse_arn
from orderflow.local.server.wire import SignedRequest, error_response, parse_request

log = logging.getLogger("orderflow.local.realistic")


@dataclass(frozen=True)
class Delay:
    name: str
    seconds: float  # at time scale 1.0
    what: str
    source: str


_IAM_CONSISTENCY = (
    "IAM User Guide, Troubleshooting IAM: 'Changes that I make are not always immediately visible' (IAM is "
    "eventually consistent); commonly observed 5-15 s; Terraform's aws_lambda_function retries for 2 min"
)
DELAYS: dict[str, Delay] = {
    d.name: d
    for d in (
        Delay("role_assumable", 10.0, "a new role cannot be assumed by Lambda yet", _IAM_CONSISTENCY),
        Delay("policy_applies", 10.0, "a new, changed or deleted inline policy does not apply yet", _IAM_CONSISTENCY),
        Delay(
            "function_active",
            3.0,
            "CreateFunction: State Pending, then Active",
            "Lambda Developer Guide, 'Lambda function states' (Pending while Lambda creates the function's "
            "resources); a few seconds for a zip function without VPC, commonly observed",
        ),
        Delay(
            "function_updated",
            2.0,
            "an update: LastUpdateStatus InProgress, then Successful",
            "Lambda Developer Guide, 'Lambda function states' (updates and LastUpdateStatus)",
        ),
        Delay(
            "mapping_enabled",
            15.0,
            "CreateEventSourceMapping: State Creating, then Enabled",
            "Lambda API Reference, EventSourceMappingConfiguration.State (Creating, Enabling, Enabled, Disabling, "
            "Disabled, Updating, Deleting); tens of seconds commonly observed",
        ),
        Delay("mapping_updated", 5.0, "UpdateEventSourceMapping: State Updating, then Enabled", "as above"),
        Delay("mapping_deleted", 10.0, "DeleteEventSourceMapping: State Deleting, then gone", "as above"),
        Delay(
            "table_active",
            8.0,
            "CreateTable: TableStatus CREATING, then ACTIVE",
            "DynamoDB API Reference, CreateTable ('CreateTable is an asynchronous operation … TableStatus set to "
            "CREATING … ACTIVE'); seconds for an on-demand table, commonly observed",
        ),
        Delay(
            "table_deleted",
            5.0,
            "DeleteTable: TableStatus DELETING, then gone",
            "DynamoDB API Reference, DeleteTable ('the table is in the DELETING state until DynamoDB completes the "
            "deletion')",
        ),
        Delay(
            "queue_name_blocked",
            60.0,
            "a deleted queue's name cannot be used again (QueueDeletedRecently)",
            "SQS API Reference, DeleteQueue: 'you must wait at least 60 seconds before creating a queue with the "
            "same name'",
        ),
        Delay(
            "queue_url_after_delete",
            5.0,
            "GetQueueUrl still answers for a deleted queue",
            "SQS API Reference, DeleteQueue: 'the deletion process takes up to 60 seconds. Requests you send "
            "involving that queue during the 60 seconds might succeed'",
        ),
        Delay(
            "queue_policy_applies",
            60.0,
            "SetQueueAttributes: a changed Policy applies to deliveries",
            "SQS API Reference, SetQueueAttributes: 'the change can take up to 60 seconds for most of the "
            "attributes to propagate throughout the Amazon SQS system'",
        ),
        Delay(
            "log_ingestion",
            3.0,
            "log events are visible to GetLogEvents/FilterLogEvents",
            "CloudWatch Logs: events are searchable after ingestion, typically within seconds, commonly observed",
        ),
    )
}
# SQS Developer Guide, 'Short and long polling': a short poll samples a subset of servers, so a receive without
# WaitTimeSeconds can come back empty while messages exist (most likely with few messages).
SHORT_POLL_EMPTY_CHANCE = 0.5


def critical_path(scale: float = 1.0) -> float:
    """The longest chain of waits `up` cannot avoid on a fresh stack: the function can only be created once its role
    is assumable, the mapping only once the function exists and the role's policies apply, and `up` is done when the
    mapping is Enabled; the table becomes ACTIVE alongside."""
    d = {name: delay.seconds * scale for name, delay in DELAYS.items()}
    function_ready = d["role_assumable"] + d["function_active"]
    return max(d["table_active"], max(function_ready, d["policy_applies"]) + d["mapping_enabled"])


class ControlPlane:
    """Resources in transition: (kind, key) -> (state, until). A transition can end with an action (the deferred
    delete of a mapping or table), run when it is due: by a background thread on the real clock, or by
    `run_due()` for a test that moves its own clock."""

    def __init__(self, scale: float, clock: Callable[[], float] = time.monotonic, background: bool = True) -> None:
        if scale <= 0:
            raise ValueError("the time scale must be positive")
        self.scale = scale
        self.clock = clock
        self._states: dict[tuple[str, Any], tuple[str, float]] = {}
        # (role ARN, policy name) -> (until, the document that applies meanwhile: the previous one, or None)
        self._policies: dict[tuple[str, str], tuple[float, Any]] = {}
        self._due: list[tuple[float, tuple[str, Any], Callable[[], None]]] = []
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stopped = threading.Event()
        if background:
            threading.Thread(target=self._run, name="realistic-control-plane", daemon=True).start()

    def seconds(self, delay: str) -> float:
        return DELAYS[delay].seconds * self.scale

    def begin(self, kind: str, key: Any, state: str, delay: str, then: Callable[[], None] | None = None) -> None:
        until = self.clock() + self.seconds(delay)
        with self._lock:
            self._states[(kind, key)] = (state, until)
            if then is not None:
                self._due.append((until, (kind, key), then))
        self._wake.set()

    def run_due(self) -> None:
        """Finish every transition whose time has come (the deferred deletes)."""
        now = self.clock()
        with self._lock:
            due = [d for d in self._due if d[0] <= now]
            self._due = [d for d in self._due if d[0] > now]
        for until, state_key, action in due:
            try:
                action()
            except Exception:  # the resource may already be gone: nothing left to finish
                log.debug("finishing %s failed", state_key, exc_info=True)
            with self._lock:
                if self._states.get(state_key, ("", None))[1] == until:
                    del self._states[state_key]

    def _run(self) -> None:
        while not self._stopped.is_set():
            self.run_due()
            with self._lock:
                next_due = min((d[0] for d in self._due), default=None)
            self._wake.wait(0.5 if next_due is None else max(0.0, min(0.5, next_due - self.clock())))
            self._wake.clear()

    def state(self, kind: str, key: Any) -> str | None:
        """The transient state, or None once the transition is over (or there was none). A deferred delete keeps
        its state until the resource is gone."""
        with self._lock:
            found = self._states.get((kind, key))
            if found is None:
                return None
            deferred = any(d[1] == (kind, key) for d in self._due)
            if found[1] <= self.clock() and not deferred:
                del self._states[(kind, key)]
                return None
            return found[0]

    # IAM: a changed policy keeps its previous effect until it has propagated.
    def policy_changed(self, role_arn: str, name: str, previous: Any) -> None:
        until = self.clock() + self.seconds("policy_applies")
        with self._lock:
            earlier = self._policies.get((role_arn, name))
            # Two quick changes: what applies meanwhile is still what applied before the first.
            meanwhile = earlier[1] if earlier and earlier[0] > self.clock() else previous
            self._policies[(role_arn, name)] = (until, meanwhile)

    def pending_policies(self, role_arn: str) -> dict[str, Any]:
        """Inline policies of a role whose change has not propagated: name -> the document that still applies."""
        now = self.clock()
        with self._lock:
            return {
                name: doc for (arn, name), (until, doc) in self._policies.items() if arn == role_arn and until > now
            }

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()


_FUNCTION_PATH = re.compile(r"^/20\d\d-\d\d-\d\d/functions/(?P<name>[^/]+)(?P<rest>/[a-z-]+)?/?$")
_MAPPING_PATH = re.compile(r"^/2015-03-31/event-source-mappings/?(?P<uuid>[^/]*)$")
_TABLE_DATA_OPERATIONS = {"PutItem", "GetItem", "UpdateItem", "DeleteItem", "Query", "Scan"}


def function_name(name_or_arn: str) -> str:
    """'arn:aws:lambda:r:a:function:Name[:qualifier]' or 'Name' -> 'Name'."""
    if not name_or_arn.startswith("arn:"):
        return name_or_arn.split(":")[0]  # Name[:qualifier]
    return parse_arn(name_or_arn).name.split(":")[0]


@dataclass
class _Answer:
    status: str
    headers: list[tuple[str, str]]
    body: bytes

    @property
    def ok(self) -> bool:
        return self.status.startswith("2")

    def json(self) -> Any:
        try:
            return json.loads(self.body or b"{}")
        except ValueError:
            return {}

    def saying(self, data: Any) -> _Answer:
        """The same answer with another body (moto answered before the transition began)."""
        return _Answer(self.status, self.headers, data if isinstance(data, bytes) else json.dumps(data).encode())


class RealisticAws:
    """WSGI middleware: AWS's control-plane timing in front of moto (see the module docstring)."""

    def __init__(self, app: Callable[..., Any], plane: ControlPlane, account: Callable[[], str]) -> None:
        self.app = app
        self.plane = plane
        self.account = account
        self._random = random.Random()
        # (region, queue name) -> (deleted at, its URL)
        self._deleted_queues: dict[tuple[str, str], tuple[float, str]] = {}

    # -- plumbing ----------------------------------------------------------------------------------------------
    def _call(self, environ: dict[str, Any]) -> _Answer:
        captured: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        body = b"".join(self.app(environ, start_response))
        return _Answer(captured["status"], captured["headers"], body)

    @staticmethod
    def _send(start_response: Any, answer: _Answer) -> list[bytes]:
        # The body may have been rewritten: its length and DynamoDB's checksum header are worked out again (a stale
        # x-amz-crc32 makes botocore retry the call, which would create the table twice).
        headers = [(k, v) for k, v in answer.headers if k.lower() not in ("content-length", "x-amz-crc32")]
        start_response(answer.status, [*headers, ("Content-Length", str(len(answer.body)))])
        return [answer.body]

    @staticmethod
    def _json(start_response: Any, status: str, data: Any, content_type: str = "application/json") -> list[bytes]:
        body = json.dumps(data, default=str).encode()
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [body]

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = parse_request(environ)
        if request is None:
            return self.app(environ, start_response)
        handler = {
            "iam": self._iam,
            "lambda": self._lambda,
            "dynamodb": self._dynamodb,
            "sqs": self._sqs,
            "logs": self._logs,
        }.get(request.service)
        if handler is None:
            return self.app(environ, start_response)
        return handler(environ, start_response, request)

    def _refuse(self, environ: dict[str, Any], start_response: Any, code: str, message: str, status: int) -> Any:
        log.info("realistic: %s: %s", code, message)
        return error_response(environ, start_response, code, message, status=status)

    # -- IAM -----------------------------------------------------------------------------------------------------
    def _iam(self, environ: dict[str, Any], start_response: Any, request: SignedRequest) -> Any:
        op, params = request.operation, request.params
        if op not in ("CreateRole", "PutRolePolicy", "DeleteRolePolicy"):
            return self.app(environ, start_response)
        role = params.get("RoleName", "")
        previous = self._inline_policy(role, params.get("PolicyName", "")) if op != "CreateRole" else None
        answer = self._call(environ)
        if answer.ok:
            role_arn = self._role_arn(role)
            if op == "CreateRole" and role_arn:
                self.plane.begin("role", role_arn, "propagating", "role_assumable")
            elif role_arn:
                self.plane.policy_changed(role_arn, params.get("PolicyName", ""), previous)
        return self._send(start_response, answer)

    def _iam_backend(self) -> Any:
        from moto.iam.models import iam_backends

        return iam_backends[self.account()]["aws"]

    def _role_arn(self, role: str) -> str | None:
        from moto.iam.exceptions import NotFoundException

        try:
            return self._iam_backend().get_role(role).arn
        except NotFoundException:
            return None

    def _inline_policy(self, role: str, name: str) -> Any:
        from moto.iam.exceptions import NotFoundException

        try:
            document = self._iam_backend().get_role_policy(role, name)[1]
        except NotFoundException:
            return None
        return json.loads(document) if isinstance(document, str) else document

    def role_assumable(self, role_arn: str) -> bool:
        return self.plane.state("role", role_arn) is None

    # -- Lambda ----------------------------------------------------------------------------------------------------
    def _lambda(self, environ: dict[str, Any], start_response: Any, request: SignedRequest) -> Any:
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        mapping = _MAPPING_PATH.match(path)
        if mapping is not None:
            return self._mapping(environ, start_response, request, method, mapping.group("uuid"))
        function = _FUNCTION_PATH.match(path)
        if method == "POST" and path.rstrip("/").endswith("/functions"):
            return self._create_function(environ, start_response, request)
        if function is None or method not in ("PUT", "POST"):
            return self.app(environ, start_response)
        key = (request.region, function_name(function.group("name")))
        state = self.plane.state("function", key)
        rest = function.group("rest") or ""
        if rest == "/invocations":
            if state == "Pending":
                return self._refuse(
                    environ,
                    start_response,
                    "ResourceConflictException",
                    "The operation cannot be performed at this time. The function is currently in the following "
                    "state: Pending",
                    409,
                )
            return self.app(environ, start_response)
        if method != "PUT" or rest not in ("/code", "/configuration"):
            return self.app(environ, start_response)
        if state is not None:
            arn = f"arn:aws:lambda:{request.region}:{self.account()}:function:{key[1]}"
            return self._refuse(
                environ,
                start_response,
                "ResourceConflictException",
                f"The operation cannot be performed at this time. An update is in progress for resource: {arn}",
                409,
            )
        refusal = self._role_refusal(environ, start_response, request)
        if refusal is not None:
            return refusal
        answer = self._call(environ)
        if answer.ok:
            self.plane.begin("function", key, "InProgress", "function_updated")
            updated = answer.json()
            updated.update(LastUpdateStatus="InProgress", LastUpdateStatusReason="The function is being updated.")
            answer = answer.saying(updated)
        return self._send(start_response, answer)

    def _role_refusal(self, environ: dict[str, Any], start_response: Any, request: SignedRequest) -> Any:
        role = request.params.get("Role")
        if role and not self.role_assumable(str(role)):
            return self._refuse(
                environ,
                start_response,
                "InvalidParameterValueException",
                "The role defined for the function cannot be assumed by Lambda.",
                400,
            )
        return None

    def _create_function(self, environ: dict[str, Any], start_response: Any, request: SignedRequest) -> Any:
        refusal = self._role_refusal(environ, start_response, request)
        if refusal is not None:
            return refusal
        answer = self._call(environ)
        if answer.ok:
            created = answer.json()
            name = created.get("FunctionName") or str(request.params.get("FunctionName", ""))
            self.plane.begin("function", (request.region, function_name(name)), "Pending", "function_active")
            # moto answered before the transition began: the answer says what GetFunction now says
            created.update(State="Pending", StateReason="The function is being created.", StateReasonCode="Creating")
            answer = answer.saying(created)
        return self._send(start_response, answer)

    def _lambda_backend(self, region: str) -> Any:
        from moto.awslambda.models import lambda_backends

        return lambda_backends[self.account()][region]

    def _mapping(
        self, environ: dict[str, Any], start_response: Any, request: SignedRequest, method: str, uuid: str
    ) -> Any:
        if method == "GET":
            return self.app(environ, start_response)
        backend = self._lambda_backend(request.region)
        if method == "POST":
            queue_arn, function = request.params.get("EventSourceArn"), str(request.params.get("FunctionName", ""))
            for existing in list(backend._event_source_mappings.values()):
                if (
                    existing.event_source_arn == queue_arn
                    and function_name(existing.function_arn) == function_name(function)
                    and self.plane.state("mapping", existing.uuid) == "Deleting"
                ):
                    return self._refuse(
                        environ,
                        start_response,
                        "ResourceConflictException",
                        f'An event source mapping with SQS arn (" {queue_arn} ") and function (" {function} ") '
                        f"already exists. Please update or delete the existing mapping with UUID {existing.uuid}",
                        409,
                    )
            answer = self._call(environ)
            if answer.ok:
                created = answer.json().get("UUID")
                if created:
                    self.plane.begin("mapping", created, "Creating", "mapping_enabled")
                    answer = answer.saying(self._mapping_configuration(backend, created))
            return self._send(start_response, answer)
        state = self.plane.state("mapping", uuid)
        if state is not None:
            return self._refuse(
                environ,
                start_response,
                "ResourceInUseException",
                f"Cannot {'update' if method == 'PUT' else 'delete'} the event source mapping because it is in use: "
                f"its state is {state}. Try again once it is Enabled or Disabled",
                400,
            )
        if method == "PUT":
            answer = self._call(environ)
            if answer.ok:
                self.plane.begin("mapping", uuid, "Updating", "mapping_updated")
                answer = answer.saying(self._mapping_configuration(backend, uuid))
            return self._send(start_response, answer)
        if method == "DELETE" and backend.get_event_source_mapping(uuid) is not None:
            # Lambda answers 202 with the mapping in state Deleting and removes it later.
            self.plane.begin(
                "mapping", uuid, "Deleting", "mapping_deleted", then=lambda: backend.delete_event_source_mapping(uuid)
            )
            return self._json(start_response, "202 Accepted", self._mapping_configuration(backend, uuid))
        return self.app(environ, start_response)

    @staticmethod
    def _mapping_configuration(backend: Any, uuid: str) -> dict[str, Any]:
        return backend.get_event_source_mapping(uuid).get_configuration()

    # -- DynamoDB ----------------------------------------------------------------------------------------------
    def _dynamodb(self, environ: dict[str, Any], start_response: Any, request: SignedRequest) -> Any:
        op, name = request.operation, str(request.params.get("TableName", ""))
        key = (request.region, name)
        state = self.plane.state("table", key) if name else None
        if op in _TABLE_DATA_OPERATIONS and state is not None:
            return self._refuse(
                environ, start_response, "ResourceNotFoundException", "Requested resource not found", 400
            )
        if op in ("DeleteTable", "UpdateTable") and state is not None:
            doing = "created" if state == "CREATING" else "deleted" if state == "DELETING" else "updated"
            return self._refuse(
                environ,
                start_response,
                "ResourceInUseException",
                f"Attempt to change a resource which is still in use: Table is being {doing}: {name}",
                400,
            )
        if op == "CreateTable":
            answer = self._call(environ)
            if answer.ok:
                self.plane.begin("table", key, "CREATING", "table_active")
                answer = answer.saying(self._describe(request.region, name))
            return self._send(start_response, answer)
        if op == "DeleteTable":
            from moto.dynamodb.models import dynamodb_backends

            backend = dynamodb_backends[self.account()][request.region]
            if name not in backend.tables:
                return self.app(environ, start_response)
            self.plane.begin("table", key, "DELETING", "table_deleted", then=lambda: backend.delete_table(name))
            body = self._describe(request.region, name)
            start_response(
                "200 OK", [("Content-Type", "application/x-amz-json-1.0"), ("Content-Length", str(len(body)))]
            )
            return [body]
        return self.app(environ, start_response)

    def _describe(self, region: str, name: str) -> bytes:
        from moto.dynamodb.models import dynamodb_backends
        from moto.dynamodb.models.utilities import dynamo_json_dump

        table = dynamodb_backends[self.account()][region].get_table(name)
        return dynamo_json_dump(table.describe(base_key="TableDescription")).encode()

    # -- SQS -------------------------------------------------------------------------------------------------------
    def _sqs(self, environ: dict[str, Any], start_response: Any, request: SignedRequest) -> Any:
        op, params = request.operation, request.params
        if op == "CreateQueue":
            name = str(params.get("QueueName", ""))
            deleted = self._deleted_queues.get((request.region, name))
            if deleted and self.plane.clock() - deleted[0] < self.plane.seconds("queue_name_blocked"):
                return self._refuse(
                    environ,
                    start_response,
                    "AWS.SimpleQueueService.QueueDeletedRecently",
                    "You must wait 60 seconds after deleting a queue before you can create another with the same name.",
                    400,
                )
            return self.app(environ, start_response)
        if op == "GetQueueUrl":
            deleted = self._deleted_queues.get((request.region, str(params.get("QueueName", ""))))
            if deleted and self.plane.clock() - deleted[0] < self.plane.seconds("queue_url_after_delete"):
                answer = self._call(environ)
                if answer.ok:  # a queue of that name was created again meanwhile
                    return self._send(start_response, answer)
                return self._json(start_response, "200 OK", {"QueueUrl": deleted[1]}, "application/x-amz-json-1.0")
            return self.app(environ, start_response)
        url = str(params.get("QueueUrl", ""))
        owner, _, name = urlparse(url).path.strip("/").partition("/")
        queue_arn = f"arn:aws:sqs:{request.region}:{owner}:{name}"
        if op == "DeleteQueue":
            answer = self._call(environ)
            if answer.ok:
                self._deleted_queues[(request.region, name)] = (self.plane.clock(), url)
            return self._send(start_response, answer)
        if op == "SetQueueAttributes" and "Policy" in (params.get("Attributes") or {}):
            previous = self._queue_policy(request.region, owner, name)
            answer = self._call(environ)
            if answer.ok:
                self.plane.begin("queue_policy", queue_arn, previous or "", "queue_policy_applies")
            return self._send(start_response, answer)
        short_poll = op == "ReceiveMessage" and not int(params.get("WaitTimeSeconds") or 0)
        if short_poll and self._queue_wait(request.region, owner, name) == 0 and self._samples_nothing():
            if environ.get("HTTP_X_AMZ_TARGET"):
                return self._json(start_response, "200 OK", {}, "application/x-amz-json-1.0")
            body = b"<ReceiveMessageResponse><ReceiveMessageResult/></ReceiveMessageResponse>"
            start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(body)))])
            return [body]
        return self.app(environ, start_response)

    def _samples_nothing(self) -> bool:
        return self._random.random() < SHORT_POLL_EMPTY_CHANCE

    @staticmethod
    def _queue(region: str, owner: str, name: str) -> Any:
        from moto.sqs.exceptions import QueueDoesNotExist
        from moto.sqs.models import sqs_backends

        try:
            return sqs_backends[owner][region].get_queue(name)
        except QueueDoesNotExist:
            return None

    def _queue_policy(self, region: str, owner: str, name: str) -> str | None:
        queue = self._queue(region, owner, name)
        return getattr(queue, "policy", None) if queue is not None else None

    def _queue_wait(self, region: str, owner: str, name: str) -> int:
        queue = self._queue(region, owner, name)
        return int(getattr(queue, "receive_message_wait_time_seconds", 0) or 0) if queue is not None else 0

    def queue_policy_in_effect(self, queue_arn: str, current: str | None) -> str | None:
        """The Policy SNS deliveries are judged by: the previous one until a change has propagated."""
        previous = self.plane.state("queue_policy", queue_arn)
        return current if previous is None else (previous or None)

    # -- CloudWatch Logs -----------------------------------------------------------------------------------------
    def _logs(self, environ: dict[str, Any], start_response: Any, request: SignedRequest) -> Any:
        if request.operation not in ("GetLogEvents", "FilterLogEvents"):
            return self.app(environ, start_response)
        answer = self._call(environ)
        if not answer.ok:
            return self._send(start_response, answer)
        data = answer.json()
        visible_before = (time.time() - self.plane.seconds("log_ingestion")) * 1000
        data["events"] = [e for e in data.get("events", []) if e.get("ingestionTime", 0) <= visible_before]
        return self._send(start_response, answer.saying(data))
