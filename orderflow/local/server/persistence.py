"""The embedded AWS keeps its state: stacks, items, messages, logs and metrics survive `local stop` / `local start`
and a killed daemon — every write it acknowledged, also across `kill -9`.

moto keeps each service's state in memory (its backends). A snapshot is those backends pickled, written atomically
(a temporary file flushed to disk, then renamed over the last one) to the state folder: when the daemon starts and
stops, every `INTERVAL_SECONDS` while writes have happened since the last one, and before a control-plane write is
answered. The data-plane writes answered between two snapshots are in the write-ahead journal (journal.py); a
snapshot names the first journal segment it does not hold. `local start` restores the last snapshot and replays the
journal after it, unless `--fresh`. Services are snapshotted in the order that loses no order: SQS before DynamoDB
— the handler writes an order before its message is deleted, so a snapshot holds the message, or the item, or both
(processed again, written once: the write is conditional).

A snapshot belongs to the moto and orderflow versions that wrote it; another version's is set aside (renamed, never
read) and the embedded AWS starts empty, saying why.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import pickle
import threading
import time
import weakref
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orderflow.local.server.journal import (
    Durability,
    Journal,
    Request,
    WriteGate,
    durability,
    replay,
    segments,
)
from orderflow.paths import private_dir

log = logging.getLogger("orderflow.local.persistence")

INTERVAL_SECONDS = 2.0
# A capture waits this long for a moment with no write in progress before it tries again.
CAPTURE_WAIT_SECONDS = 1.0
# A control-plane write waits this long for the snapshot that makes it durable (a disk too slow is logged).
COMMIT_WAIT_SECONDS = 30.0
# SQS first, DynamoDB after it (see above); the rest in any order.
SERVICES = ("sqs", "dynamodb", "sns", "iam", "sts", "awslambda", "logs", "cloudwatch", "s3", "cloudformation")
_LOCKS = (type(threading.Lock()), type(threading.RLock()))


def _versions() -> dict[str, str]:
    from moto import __version__ as moto_version

    from orderflow import __version__

    return {"orderflow": __version__, "moto": moto_version}


def _defaultdict_of(kind: type, items: dict[Any, Any]) -> defaultdict[Any, Any]:
    return defaultdict(kind, items)


class _Pickler(pickle.Pickler):
    """moto's backends hold locks, weak dictionaries and defaultdicts of lambdas: none pickles as it is. A lock
    comes back new and free, a weak dictionary with its entries, a defaultdict of `lambda: {}` as one of dict."""

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, _LOCKS):
            return (threading.RLock if "RLock" in type(obj).__name__ else threading.Lock, ())
        if isinstance(obj, threading.Condition):
            return (threading.Condition, ())
        if isinstance(obj, threading.Event):
            return (threading.Event, ())
        if isinstance(obj, weakref.WeakValueDictionary):
            return (weakref.WeakValueDictionary, (dict(obj),))
        if isinstance(obj, defaultdict) and getattr(obj.default_factory, "__name__", "") == "<lambda>":
            return (_defaultdict_of, (type(obj.default_factory()), dict(obj)))
        return NotImplemented


def snapshot(journal_from: int = 0) -> bytes:
    """Every service's backends, pickled (retried while the in-process pollers change one mid-way), with the number
    of the first journal segment it does not hold."""
    from moto.backends import get_backend

    for attempt in range(20):
        buffer = io.BytesIO()
        try:
            state = {name: dict(get_backend(name)) for name in SERVICES}  # type: ignore[arg-type]
            document = {
                "versions": _versions(),
                "journal": journal_from,
                "captured_ms": int(time.time() * 1000),  # moto's clock: unix_time_millis
                "backends": state,
            }
            _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump(document)
            return buffer.getvalue()
        except RuntimeError:  # "dictionary changed size during iteration": a queue was being polled
            time.sleep(0.01 * (attempt + 1))
    raise RuntimeError("the embedded AWS never stood still long enough to be snapshotted")


def save(path: Path, data: bytes | None = None) -> int:
    """Write a snapshot (`data`, or one taken now) atomically and durably; its size in bytes."""
    data = snapshot() if data is None else data
    private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return len(data)


@dataclass(frozen=True)
class Restored:
    """What `restore` found: taken when (None: no snapshot), if it was set aside why, and how many journaled writes
    answered after it were replayed."""

    taken: float | None = None
    set_aside: str | None = None
    replayed: int = 0


def restore(path: Path, app: Any) -> Restored:
    """Load the last snapshot into moto's backends and replay, through moto's `app`, the journal written after it;
    a missing snapshot is a fresh start (with the journal, if any, replayed onto it), another version's is set
    aside with its journal."""
    from moto.backends import get_backend

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        replayed = replay(path, 0, app)
        return Restored(replayed=replayed)
    try:
        document = pickle.loads(data)
        versions = document["versions"]
    except Exception as e:  # noqa: BLE001 - any unreadable snapshot is set aside, never half-loaded
        return _set_aside(path, f"it cannot be read ({type(e).__name__})")
    if versions != _versions():
        return _set_aside(path, f"it was written by {versions}, this is {_versions()}")
    for name, backends in document["backends"].items():
        live = get_backend(name)  # type: ignore[arg-type]
        live.clear()
        live.update(backends)
    forgiven = forgive_interrupted_receives(document.get("captured_ms", int(path.stat().st_mtime * 1000)))
    if forgiven:
        log.info("%d message(s) held by a receive the restart interrupted are visible again, uncharged", forgiven)
    replayed = replay(path, document.get("journal", 0), app)
    if replayed:
        log.info("%d write(s) acknowledged after the last snapshot replayed from the journal", replayed)
    return Restored(taken=path.stat().st_mtime, replayed=replayed)


def forgive_interrupted_receives(captured_ms: int) -> int:
    """Messages a receive held when the snapshot was taken, visible again now with that receive not counted; how
    many. The poller or client that held them died with the embedded AWS: on AWS, SQS does not go down under its
    consumers, so a restart must not push a healthy message towards maxReceiveCount and the DLQ (issue #34: 231
    healthy orders dead-lettered across 12 kills)."""
    from moto.sqs.models import sqs_backends

    forgiven = 0
    for _account, regions in list(sqs_backends.items()):
        for _region, backend in list(regions.items()):
            for queue in list(backend.queues.values()):
                for message in list(queue.pending_messages):
                    if message.visible_at > captured_ms:
                        message.visible_at = 0
                        message.approximate_receive_count = max(0, message.approximate_receive_count - 1)
                        forgiven += 1
                    queue.pending_messages.discard(message)
    return forgiven


def _set_aside(path: Path, why: str) -> Restored:
    stamp = int(time.time())
    aside = path.with_name(f"{path.name}.set-aside-{stamp}")
    with contextlib.suppress(OSError):
        path.rename(aside)
    for _number, segment in segments(path):  # its journal belongs to it: kept beside it, never replayed
        with contextlib.suppress(OSError):
            segment.rename(segment.with_name(f"{segment.name}.set-aside-{stamp}"))
    log.warning("the last snapshot %s was set aside (%s): the embedded AWS starts empty", aside, why)
    return Restored(set_aside=f"{why}; kept as {aside.name}")


def discard(path: Path) -> None:
    """Forget the kept state (`local start --fresh`): the snapshot and its journal."""
    path.unlink(missing_ok=True)
    for _number, segment in segments(path):
        segment.unlink(missing_ok=True)


class Snapshots:
    """Keeps the embedded AWS's state durable while it runs. `middleware(app)` answers a data-plane write once it is
    in the journal and a control-plane write once a snapshot holding it is on disk; a snapshot is also taken at
    start (holding what was restored and replayed), every `interval` seconds after writes, and on stop. A snapshot
    starts a new journal segment and removes the ones it holds."""

    def __init__(self, path: Path, interval: float = INTERVAL_SECONDS) -> None:
        self.path, self.interval = path, interval
        self.gate = WriteGate()
        self.journal: Journal | None = None
        self._dirty = threading.Event()
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="embedded-aws-snapshots", daemon=True)
        # Control-plane writes asking for a snapshot (counted), and how many of them the last snapshot holds.
        self._commits = threading.Condition()
        self._asked = 0
        self._held = 0
        self.taken = 0
        self.seconds = 0.0  # time spent writing snapshots (the cost, for docs/reliability.md)

    def start(self) -> Snapshots:
        self.journal = Journal(self.path, max((n for n, _ in segments(self.path)), default=-1) + 1)
        self._take()  # the restored state and what was replayed, in one snapshot: the old segments can go
        self._thread.start()
        return self

    def middleware(self, app: Any) -> Any:
        """A WSGI middleware around the embedded AWS's app (inside it: IAM's enforcement and the realism run first)."""

        def serve(environ: dict[str, Any], start_response: Any) -> Any:
            kind = durability(environ)
            if kind is Durability.NONE or self.journal is None:
                return app(environ, start_response)
            request = Request.of(environ) if kind is Durability.JOURNAL else None
            answer: dict[str, Any] = {}
            written: list[bytes] = []

            def held_back(status: str, headers: list[Any], exc_info: Any = None) -> Callable[[bytes], None]:
                answer.update(status=status, headers=headers, exc_info=exc_info)
                return written.append

            self.gate.enter_write()
            try:
                body = app(environ, held_back)
                try:
                    written.extend(body)
                finally:
                    if hasattr(body, "close"):
                        body.close()
                succeeded = int(answer.get("status", "500").split()[0]) < 400
                if succeeded and request is not None:
                    self.journal.append(request)  # before it is answered
            finally:
                self.gate.leave_write()
            if succeeded and kind is Durability.CONTROL:
                self.commit()
            elif succeeded:
                self._dirty.set()
            start_response(answer["status"], answer["headers"], answer["exc_info"])
            return written

        return serve

    def commit(self) -> None:
        """Return once a snapshot taken after this call's writes is on disk."""
        with self._commits:
            self._asked += 1
            mine = self._asked
            self._wake.set()
            if not self._commits.wait_for(lambda: self._held >= mine, COMMIT_WAIT_SECONDS):
                log.error("a control-plane write was answered before a snapshot held it (%gs)", COMMIT_WAIT_SECONDS)

    def _take(self) -> None:
        assert self.journal is not None
        started = time.perf_counter()
        with self._commits:
            covering = self._asked  # every commit counted so far had its write done before it asked
        self._dirty.clear()
        while not self.gate.capture(CAPTURE_WAIT_SECONDS):
            log.debug("a snapshot waits for a moment with no write in progress")
        try:
            first = self.journal.rotate()
            data = snapshot(journal_from=first)
        except Exception:
            log.exception("snapshot of the embedded AWS failed")
            data = None
        finally:
            self.gate.release()
        try:
            if data is not None:
                size = save(self.path, data)
                self.journal.discard_before(first)
                self.seconds += time.perf_counter() - started
                self.taken += 1
                log.debug("snapshot %d: %d bytes in %.1f ms", self.taken, size, (time.perf_counter() - started) * 1000)
        except Exception:
            log.exception("snapshot of the embedded AWS could not be written to %s", self.path)
        finally:
            with self._commits:
                self._held = max(self._held, covering)
                self._commits.notify_all()

    def _run(self) -> None:
        while not self._stopping.is_set():
            asked = self._wake.wait(self.interval)
            if self._stopping.is_set():
                break
            if asked:
                self._wake.clear()
            if asked or self._dirty.is_set():
                self._take()

    def stop(self) -> None:
        self._stopping.set()
        self._wake.set()
        self._thread.join(timeout=30)
        if self.journal is not None:
            self._take()
            self.journal.close()
            segment = self.journal.number
            for number, path in segments(self.path):
                if number == segment and path.stat().st_size == 0:
                    path.unlink(missing_ok=True)  # the segment the last snapshot opened: nothing in it
        log.info("state saved to %s (%d snapshot(s), %.0f ms in all)", self.path, self.taken, self.seconds * 1000)
