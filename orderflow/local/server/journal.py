"""The embedded AWS's write-ahead journal: an acknowledged order survives a killed daemon.

A snapshot (persistence.py) is taken every few seconds; a write answered since the last one would be lost with the
process. So every successful data-plane write (SendMessage, Publish, PutItem, PutLogEvents… — `DATA_PLANE`) is
appended to the journal *before* it is answered, and a restart replays the journal written since the snapshot
through moto's app. Data-plane writes replay as they ran: none of them is later referred to by an id its answer made
up. A control-plane write (CreateQueue, Subscribe, CreateEventSourceMapping…) is: its answer carries a generated
ARN or UUID that a replay would not reproduce, so it is made durable by a snapshot taken before it is answered
(`Durability.CONTROL`) — rare and small, so cheap.

What is not journaled, and why: reads; ReceiveMessage and ChangeMessageVisibility (only who holds a message now —
after a restart a message comes back, as it does when Lambda's poller dies on AWS: SQS is at-least-once); a
function's invocation (the runtime runs it, replaying would run it twice); and what the in-process pollers do to a
queue without HTTP (a delete not journaled is a message delivered again, and the handler's conditional write keeps
the order written once).

A record is appended with one write() to the segment file, not fsynced: it survives the daemon's death (the kernel
holds the page), not a power cut — a snapshot is fsynced.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from orderflow.local.server.wire import is_read, operation_of

# Writes that replay as they ran (their answers make up no id a later request names).
DATA_PLANE = frozenset(
    {
        # SQS
        "SendMessage", "SendMessageBatch", "DeleteMessage", "DeleteMessageBatch", "PurgeQueue",
        # SNS
        "Publish", "PublishBatch",
        # DynamoDB
        "PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems",
        # CloudWatch Logs and metrics
        "PutLogEvents", "PutMetricData",
    }
)  # fmt: skip
# Changes only who holds a message now (see the module's docstring).
_IN_FLIGHT = frozenset({"ReceiveMessage", "ChangeMessageVisibility", "ChangeMessageVisibilityBatch"})
# Only the headers moto reads to route and parse a request are kept.
_KEPT = ("REQUEST_METHOD", "PATH_INFO", "QUERY_STRING", "CONTENT_TYPE", "SERVER_NAME", "SERVER_PORT")
_HEADER = struct.Struct(">II")  # length, CRC32 of the pickled request


class Durability(Enum):
    """How a request is made durable before it is answered."""

    NONE = "none"  # a read, a receive, an invocation
    JOURNAL = "journal"  # appended to the journal
    CONTROL = "control"  # a snapshot holding it is on disk


def operation(environ: dict[str, Any]) -> str | None:
    """The operation, also for the Smithy RPC v2 protocol (CloudWatch: POST /service/<Service>/operation/<Op>)."""
    path = environ.get("PATH_INFO", "")
    if "/operation/" in path and path.startswith("/service/"):
        return path.rsplit("/", 1)[-1]
    return operation_of(environ)


def durability(environ: dict[str, Any]) -> Durability:
    name = operation(environ)
    if name is None or is_read(name) or name in _IN_FLIGHT:
        return Durability.NONE
    if name in DATA_PLANE:
        return Durability.JOURNAL
    if name.startswith("POST ") and name.endswith(("/invocations", "/invoke-async", "/invoke-async/")):
        return Durability.NONE
    return Durability.CONTROL


@dataclass(frozen=True)
class Request:
    """A write request as it reached moto: enough of its environ to serve it again, and its body."""

    environ: dict[str, str]
    body: bytes

    @classmethod
    def of(cls, environ: dict[str, Any]) -> Request:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        environ["wsgi.input"] = io.BytesIO(body)  # left in place for the app
        kept = {k: v for k, v in environ.items() if k in _KEPT or k.startswith("HTTP_")}
        return cls({k: v for k, v in kept.items() if isinstance(v, str)}, body)

    def wsgi_environ(self) -> dict[str, Any]:
        environ: dict[str, Any] = dict(self.environ)
        environ.update(
            {
                "CONTENT_LENGTH": str(len(self.body)),
                "wsgi.input": io.BytesIO(self.body),
                "wsgi.errors": io.StringIO(),
                "wsgi.url_scheme": "http",
                "wsgi.version": (1, 0),
                "wsgi.multithread": False,
                "wsgi.multiprocess": False,
                "wsgi.run_once": False,
            }
        )
        return environ

    def frame(self) -> bytes:
        data = pickle.dumps((self.environ, self.body), protocol=pickle.HIGHEST_PROTOCOL)
        return _HEADER.pack(len(data), zlib.crc32(data)) + data


def segment_path(state_file: Path, number: int) -> Path:
    return state_file.with_name(f"{state_file.name}.journal.{number:08d}")


def segments(state_file: Path) -> list[tuple[int, Path]]:
    """The journal's segments beside a state file, oldest first."""
    prefix = f"{state_file.name}.journal."
    found = []
    for path in state_file.parent.glob(f"{prefix}*"):
        suffix = path.name[len(prefix) :]
        if suffix.isdigit():
            found.append((int(suffix), path))
    return sorted(found)


def records(path: Path) -> Iterator[Request]:
    """A segment's requests in the order they were answered; a torn or corrupt tail (the daemon died mid-append,
    before it answered) ends the segment."""
    data = path.read_bytes()
    offset = 0
    while offset + _HEADER.size <= len(data):
        length, crc = _HEADER.unpack_from(data, offset)
        start = offset + _HEADER.size
        payload = data[start : start + length]
        if len(payload) < length or zlib.crc32(payload) != crc:
            return
        environ, body = pickle.loads(payload)
        yield Request(environ, body)
        offset = start + length


def replay(state_file: Path, first: int, app: Callable[..., Any]) -> int:
    """Serve again, through moto's `app`, every journaled request in segments numbered `first` and after; how many.
    A request that fails now (it named something a later snapshot-less change removed) is skipped, as it would
    fail if sent again."""
    count = 0
    for number, path in segments(state_file):
        if number < first:
            continue
        for request in records(path):
            body = app(request.wsgi_environ(), lambda *_args, **_kw: None)
            try:
                for _chunk in body:
                    pass
            finally:
                close = getattr(body, "close", None)
                if close is not None:
                    close()
            count += 1
    return count


class WriteGate:
    """Writes pass together; a snapshot's capture passes alone, so it holds every write answered before it and
    none after. A write never waits for a capture that is only waiting (a write may make another request while it
    runs); a capture waits for a moment with no write in progress."""

    def __init__(self) -> None:
        self._condition = threading.Condition()
        self._writing = 0
        self._capturing = False

    def enter_write(self) -> None:
        with self._condition:
            while self._capturing:
                self._condition.wait()
            self._writing += 1

    def leave_write(self) -> None:
        with self._condition:
            self._writing -= 1
            if self._writing == 0:
                self._condition.notify_all()

    def capture(self, timeout: float) -> bool:
        """Close the gate to writes (once none is in progress, within `timeout`); True when closed."""
        with self._condition:
            if not self._condition.wait_for(lambda: self._writing == 0, timeout):
                return False
            self._capturing = True
            return True

    def release(self) -> None:
        with self._condition:
            self._capturing = False
            self._condition.notify_all()


class Journal:
    """Append-only segments beside the state file; `rotate` starts the next one (at a snapshot)."""

    def __init__(self, state_file: Path, number: int) -> None:
        self.state_file = state_file
        self._lock = threading.Lock()
        self.number = number
        self._descriptor = self._open(number)
        self.appended = 0

    def _open(self, number: int) -> int:
        return os.open(segment_path(self.state_file, number), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def append(self, request: Request) -> None:
        frame = request.frame()
        with self._lock:
            written = os.write(self._descriptor, frame)
            while written < len(frame):  # a short write to a regular file: only on a full disk
                written += os.write(self._descriptor, frame[written:])
            self.appended += 1

    def rotate(self) -> int:
        """Start the next segment; the number of the one that starts now."""
        with self._lock:
            os.close(self._descriptor)
            self.number += 1
            self._descriptor = self._open(self.number)
            return self.number

    def discard_before(self, number: int) -> None:
        """Remove the segments a snapshot on disk already holds."""
        for n, path in segments(self.state_file):
            if n < number:
                path.unlink(missing_ok=True)

    def close(self) -> None:
        with self._lock:
            os.close(self._descriptor)
