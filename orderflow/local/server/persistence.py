"""The embedded AWS keeps its state: stacks, items, messages, logs and metrics survive `local stop` / `local start`
and a killed daemon.

moto keeps each service's state in memory (its backends). A snapshot is those backends pickled, written atomically
(a temporary file flushed to disk, then renamed over the last one) to the state folder: when the daemon stops, and
every `INTERVAL_SECONDS` while writes have happened since the last one. `local start` restores the last snapshot
unless `--fresh`. Services are snapshotted in the order that loses no order: SQS before DynamoDB — the handler
writes an order before its message is deleted, so a snapshot holds the message, or the item, or both (processed
again, written once: the write is conditional).

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

from orderflow.paths import private_dir

log = logging.getLogger("orderflow.local.persistence")

INTERVAL_SECONDS = 2.0
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


def snapshot() -> bytes:
    """Every service's backends, pickled (retried while a request changes one mid-way)."""
    from moto.backends import get_backend

    for attempt in range(20):
        buffer = io.BytesIO()
        try:
            state = {name: dict(get_backend(name)) for name in SERVICES}  # type: ignore[arg-type]
            _Pickler(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump({"versions": _versions(), "backends": state})
            return buffer.getvalue()
        except RuntimeError:  # "dictionary changed size during iteration": a request was being served
            time.sleep(0.01 * (attempt + 1))
    raise RuntimeError("the embedded AWS never stood still long enough to be snapshotted")


def save(path: Path) -> int:
    """Write a snapshot atomically; its size in bytes."""
    data = snapshot()
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
    """What `restore` found: taken when (None: nothing restored) and, if it was set aside, why."""

    taken: float | None = None
    set_aside: str | None = None


def restore(path: Path) -> Restored:
    """Load the last snapshot into moto's backends; a missing one is a fresh start, another version's is set aside."""
    from moto.backends import get_backend

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Restored()
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
    return Restored(taken=path.stat().st_mtime)


def _set_aside(path: Path, why: str) -> Restored:
    aside = path.with_name(f"{path.name}.set-aside-{int(time.time())}")
    with contextlib.suppress(OSError):
        path.rename(aside)
    log.warning("the last snapshot %s was set aside (%s): the embedded AWS starts empty", aside, why)
    return Restored(set_aside=f"{why}; kept as {aside.name}")


class Snapshots:
    """Snapshots while the embedded AWS runs: every `interval` seconds when something was written since the last
    one, and a last one on stop. `written()` is called by the server for each write request."""

    def __init__(self, path: Path, interval: float = INTERVAL_SECONDS) -> None:
        self.path, self.interval = path, interval
        self._dirty = threading.Event()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="embedded-aws-snapshots", daemon=True)
        self.taken = 0
        self.seconds = 0.0  # time spent writing snapshots (the cost, for docs/reliability.md)

    def start(self) -> Snapshots:
        self._thread.start()
        return self

    def written(self) -> None:
        self._dirty.set()

    def _take(self) -> None:
        started = time.perf_counter()
        try:
            size = save(self.path)
        except Exception:
            log.exception("snapshot of the embedded AWS failed")
            return
        self.seconds += time.perf_counter() - started
        self.taken += 1
        log.debug("snapshot %d: %d bytes in %.1f ms", self.taken, size, (time.perf_counter() - started) * 1000)

    def _run(self) -> None:
        while not self._stopping.wait(self.interval):
            if self._dirty.is_set():
                self._dirty.clear()
                self._take()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=30)
        self._take()
        log.info("state saved to %s (%d snapshot(s), %.0f ms in all)", self.path, self.taken, self.seconds * 1000)


def marking_writes(app: Any, written: Callable[[], None]) -> Any:
    """A WSGI middleware that tells `written` of every request that is not a read."""
    from orderflow.local.server.wire import is_read, operation_of

    def middleware(environ: dict[str, Any], start_response: Any) -> Any:
        operation = operation_of(environ)
        if operation is None or not is_read(operation):
            written()
        return app(environ, start_response)

    return middleware
