"""Writes each invocation's START / output / END / REPORT lines to `/aws/lambda/<function>`, a stream per process."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from orderflow.aws import error_code
from orderflow.local.runtime.credentials import RoleCredentials
from orderflow.local.runtime.environment.worker import FunctionSpec, Invocation

log = logging.getLogger("orderflow.local.runtime")


def report_lines(spec: FunctionSpec, invocation: Invocation, started_ms: int) -> list[tuple[int, str]]:
    """The log events of one invocation, in the form Lambda writes them."""
    rid = invocation.request_id
    ended_ms = started_ms + int(invocation.duration_ms)
    events = [(started_ms, f"START RequestId: {rid} Version: $LATEST")]
    events += [(max(ts, started_ms), line) for ts, line in invocation.output]
    if invocation.error and invocation.error.get("errorType") == "Runtime.ExitError":
        events.append((ended_ms, str(invocation.error.get("errorMessage"))))
        events.append((ended_ms, "Runtime.ExitError"))
    if invocation.timed_out:
        events.append(
            (
                ended_ms,
                f"{time.strftime('%Y-%m-%dT%H:%M:%S', time.gmtime(ended_ms / 1000))}Z {rid} "
                f"Task timed out after {spec.timeout:.2f} seconds",
            )
        )
    report = (
        f"REPORT RequestId: {rid}\tDuration: {invocation.duration_ms:.2f} ms\t"
        f"Billed Duration: {max(1, math.ceil(invocation.duration_ms))} ms\tMemory Size: {spec.memory_size} MB\t"
        f"Max Memory Used: {invocation.max_memory_mb or 0} MB"
    )
    if invocation.init_ms is not None:
        report += f"\tInit Duration: {invocation.init_ms:.2f} ms"
    events += [(ended_ms, f"END RequestId: {rid}"), (ended_ms, report)]
    # PutLogEvents wants chronological order; keep the lines' own order and never let time run backwards.
    ordered, latest = [], 0
    for ts, line in events:
        latest = max(latest, ts)
        ordered.append((latest, line))
    return ordered


# Log lines that never reach CloudWatch Logs on AWS either: the group is gone (Lambda creates one only with
# logs:CreateLogGroup, which orderflow's role does not grant) or the role may not write to it.
UNDELIVERABLE = {"ResourceNotFoundException", "AccessDeniedException"}

# Where one invocation's lines go: region, log group, stream, and the execution role's credentials.
_Destination = tuple[str, str, str, RoleCredentials]


class LogWriter:
    """Delivers log lines as Lambda does: asynchronously, in batches, to one stream per warm process, signed with
    the function's execution role (so the role's logs permissions decide). Batching keeps CloudWatch calls off the
    invocation's path. Lines that cannot be delivered are dropped and counted, never retried forever."""

    FLUSH_INTERVAL_SECONDS = 0.1
    MAX_EVENTS_PER_CALL = 1000

    def __init__(self, logs_client: Callable[[str, RoleCredentials], Any]) -> None:
        self._client = logs_client
        self._streams: set[tuple[str, str, str]] = set()
        self._pending: dict[_Destination, list[tuple[int, str]]] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._closed = threading.Event()
        self.dropped = 0
        self._thread = threading.Thread(target=self._deliver, name="log-writer", daemon=True)
        self._thread.start()

    def write(
        self, spec: FunctionSpec, stream: str, invocation: Invocation, started_ms: int, credentials: RoleCredentials
    ) -> None:
        with self._lock:
            self._pending.setdefault((spec.region, spec.log_group, stream, credentials), []).extend(
                report_lines(spec, invocation, started_ms)
            )
        self._wake.set()

    def _deliver(self) -> None:
        while not self._closed.is_set():
            self._wake.wait()
            self._closed.wait(self.FLUSH_INTERVAL_SECONDS)  # gather what else arrives meanwhile
            self._wake.clear()
            try:
                self.flush()
            except Exception:  # keep delivering; the lines of this round are reported, not retried
                log.exception("could not deliver function logs")

    def flush(self) -> None:
        with self._lock:
            pending, self._pending = self._pending, {}
        for (region, group, stream, credentials), lines in pending.items():
            try:
                self._put(self._client(region, credentials), region, group, stream, lines)
            except ClientError as e:
                if error_code(e) not in UNDELIVERABLE:
                    raise
                self.dropped += len(lines)
                log.warning(
                    "dropped %d log line(s) for %s (%s): %s (%d dropped so far)",
                    len(lines),
                    group,
                    stream,
                    e.response.get("Error", {}).get("Message", error_code(e)),
                    self.dropped,
                )

    def _put(self, logs: Any, region: str, group: str, stream: str, lines: list[tuple[int, str]]) -> None:
        try:
            self._put_once(logs, region, group, stream, lines)
        except ClientError as e:
            if error_code(e) != "ResourceNotFoundException" or (region, group, stream) not in self._streams:
                raise
            # The stream was known, so its group was deleted and made again since (down, then up): a new stream.
            self._streams.discard((region, group, stream))
            self._put_once(logs, region, group, stream, lines)

    def _put_once(self, logs: Any, region: str, group: str, stream: str, lines: list[tuple[int, str]]) -> None:
        if (region, group, stream) not in self._streams:
            try:
                logs.create_log_stream(logGroupName=group, logStreamName=stream)
            except ClientError as e:
                if error_code(e) != "ResourceAlreadyExistsException":
                    raise
            self._streams.add((region, group, stream))
        latest, events = 0, []
        for ts, line in lines:  # chronological across invocations too, as PutLogEvents requires
            latest = max(latest, ts)
            events.append({"timestamp": latest, "message": line})
        for start in range(0, len(events), self.MAX_EVENTS_PER_CALL):
            logs.put_log_events(
                logGroupName=group, logStreamName=stream, logEvents=events[start : start + self.MAX_EVENTS_PER_CALL]
            )

    def forget(self, region: str, group: str) -> None:
        """The streams of a deleted function's group: a new function of the same name writes to new ones."""
        with self._lock:
            self._streams = {s for s in self._streams if s[:2] != (region, group)}

    def close(self) -> None:
        """Deliver what is still pending, then stop."""
        self._closed.set()
        self._wake.set()
        self._thread.join(timeout=5)
        self.flush()
