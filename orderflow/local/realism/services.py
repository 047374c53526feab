"""AWS's control-plane timing in front of moto, one handler per service: each refuses what AWS refuses while a
resource is in transition, starts transitions after successful writes (on the `ControlPlane`), and rewrites moto's
answer where AWS's would already show the transition. The reads (GetFunction, DescribeTable, mapping State) see the
transitions through the moto patches, so every client, the AWS CLI included, sees the same states."""

from __future__ import annotations

import json
import logging
import random
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from orderflow.arns import parse_arn
from orderflow.local.realism.control_plane import ControlPlane
from orderflow.local.server.wire import SignedRequest, error_response, parse_request

log = logging.getLogger("orderflow.local.realistic")

# SQS Developer Guide, 'Short and long polling': a short poll samples a subset of servers, so a receive without
# WaitTimeSeconds can come back empty while messages exist (most likely with few messages).
SHORT_POLL_EMPTY_CHANCE = 0.5
_FUNCTION_PATH = re.compile(r"^/20\d\d-\d\d-\d\d/functions/(?P<name>[^/]+)(?P<rest>/[a-z-]+)?/?$")
_MAPPING_PATH = re.compile(r"^/2015-03-31/event-source-mappings/?(?P<uuid>[^/]*)$")
# The calls that start a table's transition: the status it shows meanwhile, and for how long.
_TABLE_TRANSITIONS = {"CreateTable": ("CREATING", "table_active"), "UpdateTable": ("UPDATING", "table_updated")}
_TABLE_DATA_OPERATIONS = {"PutItem", "GetItem", "UpdateItem", "DeleteItem", "Query", "Scan"}
BUSY_FUNCTION = "The operation cannot be performed at this time."


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


class _Service:
    """One service's realism: the plumbing every handler shares (moto's answer, a refusal, a JSON answer)."""

    def __init__(self, app: Callable[..., Any], plane: ControlPlane, account: Callable[[], str]) -> None:
        self.app, self.plane, self.account = app, plane, account

    def handle(self, environ: dict[str, Any], start_response: Any, request: SignedRequest) -> Any:
        raise NotImplementedError

    def call(self, environ: dict[str, Any]) -> _Answer:
        captured: dict[str, Any] = {}

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            captured["status"], captured["headers"] = status, headers
            return lambda data: None

        body = b"".join(self.app(environ, start_response))
        return _Answer(captured["status"], captured["headers"], body)

    @staticmethod
    def send(start_response: Any, answer: _Answer) -> list[bytes]:
        # The body may have been rewritten: its length and DynamoDB's checksum header are worked out again (a stale
        # x-amz-crc32 makes botocore retry the call, which would create the table twice).
        headers = [(k, v) for k, v in answer.headers if k.lower() not in ("content-length", "x-amz-crc32")]
        start_response(answer.status, [*headers, ("Content-Length", str(len(answer.body)))])
        return [answer.body]

    @staticmethod
    def respond(start_response: Any, status: str, body: bytes, content_type: str) -> list[bytes]:
        start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [body]

    def json(self, start_response: Any, status: str, data: Any, content_type: str = "application/json") -> list[bytes]:
        return self.respond(start_response, status, json.dumps(data, default=str).encode(), content_type)

    @staticmethod
    def refuse(environ: dict[str, Any], start_response: Any, code: str, message: str, status: int) -> Any:
        log.info("realistic: %s: %s", code, message)
        return error_response(environ, start_response, code, message, status=status)


class _Iam(_Service):
    """A new role is not assumable at once; a new, changed or deleted inline policy applies only later."""

    def handle(self, environ: dict[str, Any], start_response: Any, request: SignedRequest) -> Any:
        op, params = request.operation, request.params
        if op not in ("CreateRole", "PutRolePolicy", "DeleteRolePolicy"):
            return self.app(environ, start_response)
        role = params.get("RoleName", "")
        previous = self._inline_policy(role, params.get("PolicyName", "")) if op != "CreateRole" else None
        answer = self.call(environ)
        role_arn = self._role_arn(role) if answer.ok else None
        if role_arn and op == "CreateRole":
            self.plane.begin("role", role_arn, "propagating", "role_assumable")
        elif role_arn:
            self.plane.policy_changed(role_arn, params.get("PolicyName", ""), previous)
        return self.send(start_response, answer)

    def _backend(self) -> Any:
        from moto.iam.models import iam_backends

        return iam_backends[self.account()]["aws"]

    def _role_arn(self, role: str) -> str | None:
        from moto.iam.exceptions import NotFoundException

        try:
            return self._backend().get_role(role).arn
        except NotFoundException:
            return None

    def _inline_policy(self, role: str, name: str) -> Any:
        from moto.iam.exceptions import NotFoundException

        try:
            document = self._backend().get_role_policy(role, name)[1]
        except NotFoundException:
            return None
        return json.loads(document) if isinstance(document, str) else document


class _Lambda(_Service):
    """Functions Pending then Active, updates InProgress, Inactive when idle; mappings Creating, Enabling, Updating,
    Disabling, Deleting, and Disabled when what Lambda checks at the end of Creating fails."""

    # (mapping) -> why Lambda could not enable it, or None: set by the embedded AWS, which knows the role's policies.
    mapping_problem: Callable[[Any], str | None] | None = None

    def handle(self, environ: dict[str, Any], start_response: Any, request: SignedRequest) -> Any:
        method, path = environ.get("REQUEST_METHOD", ""), environ.get("PATH_INFO", "")
        mapping = _MAPPING_PATH.match(path)
        if mapping is not None:
            return self._mapping(environ, start_response, request, method, mapping.group("uuid"))
        if method == "POST" and path.rstrip("/").endswith("/functions"):
            return self._create_function(environ, start_response, request)
        function = _FUNCTION_PATH.match(path)
        if function is None or method not in ("PUT", "POST"):
            return self.app(environ, start_response)
        key = (request.region, function_name(function.group("name")))
        rest = function.group("rest") or ""
        if rest == "/invocations":
            return self._invoke(environ, start_response, key)
        if method != "PUT" or rest not in ("/code", "/configuration"):
            return self.app(environ, start_response)
        return self._update_function(environ, start_response, request, key)

    def role_assumable(self, role_arn: str) -> bool:
        return self.plane.state("role", role_arn) is None

    def _invoke(self, environ: dict[str, Any], start_response: Any, key: tuple[str, str]) -> Any:
        if self.plane.state("function", key) is None and self.plane.idle("function", key, "function_inactive"):
            # Lambda function states: invoking an Inactive function fails, and Lambda reactivates it (Pending).
            self.reactivate(key)
            message = f"{BUSY_FUNCTION} The function is currently in the following state: Inactive"
            return self.refuse(environ, start_response, "ResourceConflictException", message, 409)
        if self.plane.state("function", key) == "Pending":
            message = f"{BUSY_FUNCTION} The function is currently in the following state: Pending"
            return self.refuse(environ, start_response, "ResourceConflictException", message, 409)
        self.plane.touch("function", key)
        return self.app(environ, start_response)

    def reactivate(self, key: tuple[str, str]) -> None:
        self.plane.touch("function", key)
        self.plane.begin("function", key, "Pending", "function_active")

    def _update_function(
        self, environ: dict[str, Any], start_response: Any, request: SignedRequest, key: tuple[str, str]
    ) -> Any:
        if self.plane.state("function", key) is not None:
            arn = f"arn:aws:lambda:{request.region}:{self.account()}:function:{key[1]}"
            message = f"{BUSY_FUNCTION} An update is in progress for resource: {arn}"
            return self.refuse(environ, start_response, "ResourceConflictException", message, 409)
        refusal = self._role_refusal(environ, start_response, request)
        if refusal is not None:
            return refusal
        answer = self.call(environ)
        if answer.ok:
            self.plane.touch("function", key)  # an update reactivates an Inactive function
            self.plane.begin("function", key, "InProgress", "function_updated")
            updated = answer.json()
            updated.update(LastUpdateStatus="InProgress", LastUpdateStatusReason="The function is being updated.")
            answer = answer.saying(updated)
        return self.send(start_response, answer)

    def _role_refusal(self, environ: dict[str, Any], start_response: Any, request: SignedRequest) -> Any:
        role = request.params.get("Role")
        if role and not self.role_assumable(str(role)):
            message = "The role defined for the function cannot be assumed by Lambda."
            return self.refuse(environ, start_response, "InvalidParameterValueException", message, 400)
        return None

    def _create_function(self, environ: dict[str, Any], start_response: Any, request: SignedRequest) -> Any:
        refusal = self._role_refusal(environ, start_response, request)
        if refusal is not None:
            return refusal
        answer = self.call(environ)
        if answer.ok:
            created = answer.json()
            name = created.get("FunctionName") or str(request.params.get("FunctionName", ""))
            self.plane.touch("function", (request.region, function_name(name)))
            self.plane.begin("function", (request.region, function_name(name)), "Pending", "function_active")
            # moto answered before the transition began: the answer says what GetFunction now says
            created.update(State="Pending", StateReason="The function is being created.", StateReasonCode="Creating")
            answer = answer.saying(created)
        return self.send(start_response, answer)

    def _backend(self, region: str) -> Any:
        from moto.awslambda.models import lambda_backends

        return lambda_backends[self.account()][region]

    def _mapping(
        self, environ: dict[str, Any], start_response: Any, request: SignedRequest, method: str, uuid: str
    ) -> Any:
        if method == "GET":
            return self.app(environ, start_response)
        backend = self._backend(request.region)
        if method == "POST":
            return self._create_mapping(environ, start_response, request, backend)
        state = self.plane.state("mapping", uuid)
        if state is not None:
            doing = "update" if method == "PUT" else "delete"
            message = (
                f"Cannot {doing} the event source mapping because it is in use: its state is {state}. Try again once "
                "it is Enabled or Disabled"
            )
            return self.refuse(environ, start_response, "ResourceInUseException", message, 400)
        if method == "PUT":
            mapping = backend.get_event_source_mapping(uuid)
            was_enabled = bool(mapping.enabled) if mapping is not None else None
            answer = self.call(environ)
            if answer.ok:
                wanted = request.params.get("Enabled")
                # Lambda API Reference, EventSourceMappingConfiguration.State: Enabling / Disabling when the update
                # switches the mapping on or off, Updating otherwise.
                state = "Updating" if wanted is None or bool(wanted) == was_enabled else (
                    "Enabling" if wanted else "Disabling")  # fmt: skip
                self.plane.set_reason("mapping", uuid, None)  # the user's change: USER_INITIATED again
                # Switched on, it is checked as a new one is: it may end Disabled again, with the reason.
                then = (lambda: self._finish_creating(backend, uuid)) if state == "Enabling" else None
                self.plane.begin("mapping", uuid, state, "mapping_updated", then=then)
                answer = answer.saying(backend.get_event_source_mapping(uuid).get_configuration())
            return self.send(start_response, answer)
        if method == "DELETE" and backend.get_event_source_mapping(uuid) is not None:
            # Lambda answers 202 with the mapping in state Deleting and removes it later.
            finish = lambda: backend.delete_event_source_mapping(uuid)  # noqa: E731
            self.plane.begin("mapping", uuid, "Deleting", "mapping_deleted", then=finish)
            return self.json(start_response, "202 Accepted", backend.get_event_source_mapping(uuid).get_configuration())
        return self.app(environ, start_response)

    def _create_mapping(
        self, environ: dict[str, Any], start_response: Any, request: SignedRequest, backend: Any
    ) -> Any:
        queue_arn, function = request.params.get("EventSourceArn"), str(request.params.get("FunctionName", ""))
        for existing in list(backend._event_source_mappings.values()):
            if (
                existing.event_source_arn == queue_arn
                and function_name(existing.function_arn) == function_name(function)
                and self.plane.state("mapping", existing.uuid) == "Deleting"
            ):
                message = (
                    f'An event source mapping with SQS arn (" {queue_arn} ") and function (" {function} ") already '
                    f"exists. Please update or delete the existing mapping with UUID {existing.uuid}"
                )
                return self.refuse(environ, start_response, "ResourceConflictException", message, 409)
        answer = self.call(environ)
        created = answer.json().get("UUID") if answer.ok else None
        if created:
            finish = lambda: self._finish_creating(backend, created)  # noqa: E731
            self.plane.begin("mapping", created, "Creating", "mapping_enabled", then=finish)
            answer = answer.saying(backend.get_event_source_mapping(created).get_configuration())
        return self.send(start_response, answer)

    def _finish_creating(self, backend: Any, uuid: str) -> None:
        """Lambda checks the mapping once more when it ends Creating (or Enabling): a role that cannot be assumed or
        may not read the queue by then leaves it Disabled, with the problem as its StateTransitionReason."""
        mapping = backend.get_event_source_mapping(uuid)
        problem = self.mapping_problem(mapping) if mapping is not None and self.mapping_problem else None
        if problem is not None:
            mapping.enabled = False
            self.plane.set_reason("mapping", uuid, f"PROBLEM: {problem}")


class _DynamoDb(_Service):
    """Tables CREATING then ACTIVE, DELETING then gone; their data and changes refused meanwhile."""

    def handle(self, environ: dict[str, Any], start_response: Any, request: SignedRequest) -> Any:
        op, name = request.operation, str(request.params.get("TableName", ""))
        key = (request.region, name)
        state = self.plane.state("table", key) if name else None
        if op in _TABLE_DATA_OPERATIONS and state in ("CREATING", "DELETING"):  # UPDATING still serves data
            return self.refuse(
                environ, start_response, "ResourceNotFoundException", "Requested resource not found", 400
            )
        if op in ("DeleteTable", "UpdateTable") and state is not None:
            doing = "created" if state == "CREATING" else "deleted" if state == "DELETING" else "updated"
            message = f"Attempt to change a resource which is still in use: Table is being {doing}: {name}"
            return self.refuse(environ, start_response, "ResourceInUseException", message, 400)
        if op == "DeleteTable":
            return self._delete(environ, start_response, request.region, name)
        if op in _TABLE_TRANSITIONS:
            answer = self.call(environ)
            if answer.ok:
                self.plane.begin("table", key, *_TABLE_TRANSITIONS[op])
                answer = answer.saying(self._describe(request.region, name))
            return self.send(start_response, answer)
        return self.app(environ, start_response)

    def _delete(self, environ: dict[str, Any], start_response: Any, region: str, name: str) -> Any:
        from moto.dynamodb.models import dynamodb_backends

        backend = dynamodb_backends[self.account()][region]
        if name not in backend.tables:
            return self.app(environ, start_response)
        self.plane.begin("table", (region, name), "DELETING", "table_deleted", then=lambda: backend.delete_table(name))
        return self.respond(start_response, "200 OK", self._describe(region, name), "application/x-amz-json-1.0")

    def _describe(self, region: str, name: str) -> bytes:
        from moto.dynamodb.models import dynamodb_backends
        from moto.dynamodb.models.utilities import dynamo_json_dump

        table = dynamodb_backends[self.account()][region].get_table(name)
        return dynamo_json_dump(table.describe(base_key="TableDescription")).encode()


class _Sqs(_Service):
    """A deleted queue's name blocked for 60 s and its URL still answering; a changed Policy applies to deliveries
    only later; a short poll may come back empty."""

    def __init__(self, app: Callable[..., Any], plane: ControlPlane, account: Callable[[], str]) -> None:
        super().__init__(app, plane, account)
        self._random = random.Random()
        # (region, queue name) -> (deleted at, its URL)
        self._deleted: dict[tuple[str, str], tuple[float, str]] = {}

    def handle(self, environ: dict[str, Any], start_response: Any, request: SignedRequest) -> Any:
        op, params = request.operation, request.params
        if op in ("CreateQueue", "GetQueueUrl"):
            return self._by_name(environ, start_response, request)
        url = str(params.get("QueueUrl", ""))
        owner, _, name = urlparse(url).path.strip("/").partition("/")
        if op == "DeleteQueue":
            answer = self.call(environ)
            if answer.ok:
                self._deleted[(request.region, name)] = (self.plane.clock(), url)
            return self.send(start_response, answer)
        if op == "SetQueueAttributes" and "Policy" in (params.get("Attributes") or {}):
            queue = self._queue(request.region, owner, name)
            previous = getattr(queue, "policy", None) if queue is not None else None
            answer = self.call(environ)
            if answer.ok:
                queue_arn = f"arn:aws:sqs:{request.region}:{owner}:{name}"
                self.plane.changed("queue_policy", queue_arn, previous or None, "queue_policy_applies")
            return self.send(start_response, answer)
        if op == "ReceiveMessage" and self._samples_nothing(request, owner, name):
            if environ.get("HTTP_X_AMZ_TARGET"):
                return self.json(start_response, "200 OK", {}, "application/x-amz-json-1.0")
            body = b"<ReceiveMessageResponse><ReceiveMessageResult/></ReceiveMessageResponse>"
            return self.respond(start_response, "200 OK", body, "text/xml")
        return self.app(environ, start_response)

    def _by_name(self, environ: dict[str, Any], start_response: Any, request: SignedRequest) -> Any:
        deleted = self._deleted.get((request.region, str(request.params.get("QueueName", ""))))
        since = self.plane.clock() - deleted[0] if deleted else None
        if (
            request.operation == "CreateQueue"
            and since is not None
            and since < self.plane.seconds("queue_name_blocked")
        ):
            message = (
                "You must wait 60 seconds after deleting a queue before you can create another with the same name."
            )
            return self.refuse(environ, start_response, "AWS.SimpleQueueService.QueueDeletedRecently", message, 400)
        if (
            request.operation == "GetQueueUrl"
            and since is not None
            and since < self.plane.seconds("queue_url_after_delete")
        ):
            answer = self.call(environ)
            if answer.ok:  # a queue of that name was created again meanwhile
                return self.send(start_response, answer)
            assert deleted is not None
            return self.json(start_response, "200 OK", {"QueueUrl": deleted[1]}, "application/x-amz-json-1.0")
        return self.app(environ, start_response)

    def _samples_nothing(self, request: SignedRequest, owner: str, name: str) -> bool:
        """A short poll (no WaitTimeSeconds, on a queue without ReceiveMessageWaitTimeSeconds) may miss messages."""
        if int(request.params.get("WaitTimeSeconds") or 0):
            return False
        queue = self._queue(request.region, owner, name)
        waits = int(getattr(queue, "receive_message_wait_time_seconds", 0) or 0) if queue is not None else 0
        return waits == 0 and self._random.random() < SHORT_POLL_EMPTY_CHANCE

    @staticmethod
    def _queue(region: str, owner: str, name: str) -> Any:
        from moto.sqs.exceptions import QueueDoesNotExist
        from moto.sqs.models import sqs_backends

        try:
            return sqs_backends[owner][region].get_queue(name)
        except QueueDoesNotExist:
            return None


class _Logs(_Service):
    """Log events are visible only once ingested, a while after PutLogEvents, on the plane's clock."""

    def __init__(self, app: Callable[..., Any], plane: ControlPlane, account: Callable[[], str]) -> None:
        super().__init__(app, plane, account)
        # (group, stream, timestamp, message) -> when it was put, for the events still being ingested
        self._ingesting: dict[tuple[str, str, int, str], float] = {}
        self._lock = threading.Lock()

    def handle(self, environ: dict[str, Any], start_response: Any, request: SignedRequest) -> Any:
        if request.operation == "PutLogEvents":
            return self._put(environ, start_response, request)
        if request.operation not in ("GetLogEvents", "FilterLogEvents"):
            return self.app(environ, start_response)
        answer = self.call(environ)
        if not answer.ok:
            return self.send(start_response, answer)
        group, stream = str(request.params.get("logGroupName", "")), request.params.get("logStreamName")
        data = answer.json()
        data["events"] = [
            e for e in data.get("events", []) if self._ingested(group, e.get("logStreamName") or stream, e)
        ]
        return self.send(start_response, answer.saying(data))

    def _put(self, environ: dict[str, Any], start_response: Any, request: SignedRequest) -> Any:
        answer = self.call(environ)
        if answer.ok:
            group, stream = str(request.params.get("logGroupName", "")), str(request.params.get("logStreamName", ""))
            now = self.plane.clock()
            with self._lock:
                self._ingesting = {k: at for k, at in self._ingesting.items() if not self._past(at, now)}
                for event in request.params.get("logEvents") or []:
                    self._ingesting[(group, stream, int(event.get("timestamp", 0)), str(event.get("message")))] = now
        return self.send(start_response, answer)

    def _ingested(self, group: str, stream: Any, event: dict[str, Any]) -> bool:
        key = (group, str(stream), int(event.get("timestamp", 0)), str(event.get("message")))
        with self._lock:
            put_at = self._ingesting.get(key)
        return put_at is None or self._past(put_at, self.plane.clock())

    def _past(self, put_at: float, now: float) -> bool:
        return now - put_at >= self.plane.seconds("log_ingestion")


class RealisticAws:
    """WSGI middleware: the per-service handlers, as a table, in front of moto (services without one pass)."""

    def __init__(self, app: Callable[..., Any], plane: ControlPlane, account: Callable[[], str]) -> None:
        self.app = app
        self.plane = plane
        self._lambda = _Lambda(app, plane, account)
        self.handlers: dict[str, _Service] = {
            "iam": _Iam(app, plane, account),
            "lambda": self._lambda,
            "dynamodb": _DynamoDb(app, plane, account),
            "sqs": _Sqs(app, plane, account),
            "logs": _Logs(app, plane, account),
        }

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = parse_request(environ)
        handler = self.handlers.get(request.service) if request is not None else None
        if handler is None or request is None:
            return self.app(environ, start_response)
        return handler.handle(environ, start_response, request)

    def role_assumable(self, role_arn: str) -> bool:
        return self._lambda.role_assumable(role_arn)

    def check_mappings_with(self, problem: Callable[[Any], str | None]) -> None:
        self._lambda.mapping_problem = problem

    def function_invoked(self, region: str, name: str) -> None:
        """The runtime ran the function: it is not idle (an idle one is reactivated first, as Lambda does)."""
        key = (region, name)
        if self.plane.state("function", key) is None and self.plane.idle("function", key, "function_inactive"):
            self._lambda.reactivate(key)
        else:
            self.plane.touch("function", key)

    def queue_policy_in_effect(self, queue_arn: str, current: str | None) -> str | None:
        """The Policy SNS deliveries are judged by: the previous one until a change has propagated."""
        return self.plane.in_effect("queue_policy", queue_arn, current)
