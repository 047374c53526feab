"""The Lambda Runtime API, served on loopback to one execution environment (one function process).

The function process finds it in AWS_LAMBDA_RUNTIME_API, as on Lambda, and speaks it with AWS's own runtime client
(`awslambdaric`) or orderflow's stand-in (`ric.py`). Routes and headers are the Lambda Developer Guide's ("Using the
Lambda runtime API for custom runtimes", API version 2018-06-01):
- GET  /2018-06-01/runtime/invocation/next: blocks until an invocation; the event as the body, with
  Lambda-Runtime-Aws-Request-Id, -Deadline-Ms, -Invoked-Function-Arn, -Trace-Id (and -Client-Context,
  -Cognito-Identity when there are any);
- POST /2018-06-01/runtime/invocation/{id}/response: the result, 202;
- POST /2018-06-01/runtime/invocation/{id}/error: an error document (Lambda-Runtime-Function-Error-Type), 202;
- POST /2018-06-01/runtime/init/error: initialisation failed, 202.
An unknown request id is refused with 400, a response over Lambda's 6 MB with 413.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import re
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

PREFIX = "/2018-06-01/runtime"
# Lambda's limit on a synchronous response (Lambda Developer Guide, "Lambda quotas": 6 MB).
MAX_RESPONSE_BYTES = 6 * 1024 * 1024
ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
TOO_LARGE = "Function.ResponseSizeTooLarge"
_INVOCATION_ROUTE = re.compile(rf"^{PREFIX}/invocation/(?P<id>[^/]+)/(?P<what>response|error)$")
# How often a waiting /next looks whether the environment is being shut down.
_NEXT_POLL_SECONDS = 0.5


@dataclass(frozen=True)
class Invocation:
    """What /next hands the runtime."""

    request_id: str
    event: bytes
    deadline_ms: int
    function_arn: str
    trace_id: str
    client_context: str | None = None
    cognito_identity: str | None = None

    def headers(self) -> dict[str, str]:
        headers = {
            "Lambda-Runtime-Aws-Request-Id": self.request_id,
            "Lambda-Runtime-Deadline-Ms": str(self.deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": self.function_arn,
            "Lambda-Runtime-Trace-Id": self.trace_id,
        }
        if self.client_context is not None:
            headers["Lambda-Runtime-Client-Context"] = self.client_context
        if self.cognito_identity is not None:
            headers["Lambda-Runtime-Cognito-Identity"] = self.cognito_identity
        return headers


@dataclass(frozen=True)
class Report:
    """What the runtime told the API: `kind` is "next" (it is ready for work), "response", "error" or "init-error";
    `body` the payload or error document as sent."""

    kind: str
    request_id: str | None = None
    body: bytes = b""
    error_type: str | None = None

    def document(self) -> Any:
        """The body as JSON (an error document, or the function's result); None when empty or not JSON."""
        if not self.body:
            return None
        try:
            return json.loads(self.body)
        except ValueError:
            return None


class RuntimeApi:
    """The endpoint of one execution environment. `offer` an invocation; read what the runtime says from
    `reports` (a queue, in the order it arrived)."""

    def __init__(self) -> None:
        self.reports: queue.Queue[Report] = queue.Queue()
        # A byte per report: the environment waits on the function's output and on this in one select().
        self.wake_fd, self._wake_write = os.pipe()
        self._pending: queue.Queue[Invocation] = queue.Queue()
        self._current: str | None = None
        self._lock = threading.Lock()
        self._closed = threading.Event()
        self._server = _Server(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="runtime-api", daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        """host:port, as AWS_LAMBDA_RUNTIME_API holds it."""
        return f"127.0.0.1:{self._server.server_port}"

    def offer(self, invocation: Invocation) -> None:
        with self._lock:
            self._current = invocation.request_id
        self._pending.put(invocation)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        """Stop serving; idempotent. The wake pipe is closed under the lock `report` writes under: a file descriptor
        number closed twice, or written after its close, could belong to another file by then."""
        with self._lock:
            if self._closed.is_set():
                return
            self._closed.set()
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            for fd in (self.wake_fd, self._wake_write):
                with contextlib.suppress(OSError):
                    os.close(fd)

    def report(self, report: Report) -> None:
        self.reports.put(report)
        with self._lock:
            if not self._closed.is_set():
                with contextlib.suppress(OSError):
                    os.write(self._wake_write, b"!")

    # The handler's side -------------------------------------------------------------------------------------

    def next_invocation(self) -> Invocation | None:
        """Block until an invocation is offered (None once closed). The runtime asking is its sign it is ready."""
        self.report(Report("next"))
        while not self._closed.is_set():
            try:
                return self._pending.get(timeout=_NEXT_POLL_SECONDS)
            except queue.Empty:
                continue
        return None

    def is_current(self, request_id: str) -> bool:
        with self._lock:
            return request_id == self._current

    def answer(self, path: str, body: bytes, error_type: str | None) -> tuple[HTTPStatus, dict[str, Any]]:
        """A POST from the runtime: an invocation's response or error, or its init error."""
        if path == f"{PREFIX}/init/error":
            self.report(Report("init-error", None, body, error_type))
            return HTTPStatus.ACCEPTED, {"status": "OK"}
        route = _INVOCATION_ROUTE.match(path)
        if route is None:
            return HTTPStatus.NOT_FOUND, {"errorMessage": "unknown route", "errorType": "NotFound"}
        request_id, what = route.group("id"), route.group("what")
        if not self.is_current(request_id):
            return HTTPStatus.BAD_REQUEST, {
                "errorMessage": f"Invalid request ID: {request_id!r}",
                "errorType": "InvalidRequestID",
            }
        if what == "response" and len(body) > MAX_RESPONSE_BYTES:
            self.finish(request_id, Report("error", request_id, _too_large(len(body)), TOO_LARGE))
            message = f"Exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
            return HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"errorMessage": message, "errorType": "RequestEntityTooLarge"}
        self.finish(request_id, Report(what, request_id, body, error_type))
        return HTTPStatus.ACCEPTED, {"status": "OK"}

    def finish(self, request_id: str, report: Report) -> None:
        with self._lock:
            if self._current == request_id:
                self._current = None
        self.report(report)


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        """A function process killed mid-request (a timeout, its memory) drops its connection: routine, not news."""


def _handler_for(api: RuntimeApi) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: one connection per runtime, as on Lambda
        # Headers and body go out in separate writes: without TCP_NODELAY the body waits for the client's delayed
        # ACK (40 ms on Linux), on every /next and every answer.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the embedded AWS's log is not the place for every /next

        def _reply(self, status: HTTPStatus, document: dict[str, Any], headers: dict[str, str] | None = None) -> None:
            body = json.dumps(document).encode()
            self._send(status, body, {"Content-Type": "application/json", **(headers or {})})

        def _send(self, status: HTTPStatus, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def do_GET(self) -> None:
            if self.path != f"{PREFIX}/invocation/next":
                self._reply(HTTPStatus.NOT_FOUND, {"errorMessage": "unknown route", "errorType": "NotFound"})
                return
            invocation = api.next_invocation()
            if invocation is None:
                self._reply(HTTPStatus.INTERNAL_SERVER_ERROR, {"errorMessage": "shutting down", "errorType": "Exit"})
                return
            self._send(HTTPStatus.OK, invocation.event, {"Content-Type": "application/json", **invocation.headers()})

        def do_POST(self) -> None:
            status, document = api.answer(self.path, self._body(), self.headers.get(ERROR_TYPE_HEADER))
            self._reply(status, document)

    return Handler


def _too_large(size: int) -> bytes:
    message = (
        f"Response payload size ({size} bytes) exceeded maximum allowed payload size ({MAX_RESPONSE_BYTES} bytes)."
    )
    return json.dumps({"errorMessage": message, "errorType": "Function.ResponseSizeTooLarge"}).encode()
