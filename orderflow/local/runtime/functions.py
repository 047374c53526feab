"""Function hosting: reads each function's configuration from the Lambda API, unpacks the deployed zip, and keeps
warm worker processes to invoke it."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import threading
import time
import uuid
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orderflow.arns import parse_arn
from orderflow.aws import or_none
from orderflow.local.runtime.concurrency import ACCOUNT_CONCURRENCY, Concurrency, Throttled
from orderflow.local.runtime.credentials import ExecutionRoles, RoleCredentials
from orderflow.local.runtime.environment.launch import Launch, launch_for
from orderflow.local.runtime.environment.worker import FunctionSpec, Invocation, WorkerProcess
from orderflow.local.runtime.logs import LogWriter
from orderflow.local.runtime.metrics import LambdaMetrics

# function ARN -> the zip bytes that were deployed (what CreateFunction / UpdateFunctionCode received).
CodeSource = Callable[[str], bytes]

CONFIG_TTL_SECONDS = 1.0


def region_of(arn: str) -> str:
    return parse_arn(arn).region


class FunctionHost:
    """Invokes functions by ARN; one pool of warm processes per function, replaced when code or config change."""

    def __init__(
        self,
        endpoint: str,
        code_source: CodeSource,
        lambda_client: Callable[[str], Any],
        log_writer: LogWriter,
        work_dir: Path,
        roles: ExecutionRoles,
        metrics: LambdaMetrics | None = None,
        concurrency: Concurrency | None = None,
    ) -> None:
        self.endpoint = endpoint
        # None: a counter of its own (AWS's default account limit; reservations as GetFunction reports them).
        self.concurrency = concurrency or Concurrency(ACCOUNT_CONCURRENCY)
        self._metrics = metrics
        self._roles = roles
        self._code_source = code_source
        self._lambda = lambda_client
        self._logs = log_writer
        self._work_dir = work_dir
        self._lock = threading.Lock()
        self._idle: dict[str, list[WorkerProcess]] = {}
        self._busy: set[WorkerProcess] = set()
        self._specs: dict[str, tuple[float, FunctionSpec]] = {}
        # The version each function runs: Lambda keeps running it while an update is InProgress.
        self._in_effect: dict[str, FunctionSpec] = {}
        # Told of every invocation (the realistic control plane: a function in use is not idle).
        self.on_invoke: Callable[[FunctionSpec], None] | None = None
        self._launches: dict[str, Launch] = {}
        self._closed = False

    def spec(self, function_arn: str) -> FunctionSpec:
        """The function's current configuration (cached for a second: pollers ask once per batch)."""
        cached = self._specs.get(function_arn)
        if cached and time.monotonic() - cached[0] < CONFIG_TTL_SECONDS:
            return cached[1]
        # GetFunction: the configuration and the reserved concurrency in one call.
        described = self._lambda(region_of(function_arn)).get_function(FunctionName=function_arn)
        config = described["Configuration"]
        running = self._in_effect.get(function_arn)
        if config.get("LastUpdateStatus") == "InProgress" and running is not None:
            # Lambda function states: "the function continues to run the previous code and configuration" until
            # the update is Successful.
            return running
        reserved = (described.get("Concurrency") or {}).get("ReservedConcurrentExecutions")
        code_dir = self._unpack(function_arn, config["FunctionName"], config["CodeSha256"])
        spec = FunctionSpec(
            name=config["FunctionName"],
            arn=config["FunctionArn"],
            region=region_of(function_arn),
            handler=config["Handler"],
            runtime=config.get("Runtime", "python3"),
            timeout=int(config.get("Timeout", 3)),
            memory_size=int(config.get("MemorySize", 128)),
            variables=dict(config.get("Environment", {}).get("Variables", {})),
            code_sha256=config["CodeSha256"],
            code_dir=code_dir,
            log_group=config.get("LoggingConfig", {}).get("LogGroup") or f"/aws/lambda/{config['FunctionName']}",
            role=config["Role"],
            reserved_concurrency=None if reserved is None else int(reserved),
        )
        self._specs[function_arn] = (time.monotonic(), spec)
        self._in_effect[function_arn] = spec
        return spec

    def _unpack(self, function_arn: str, name: str, code_sha256: str) -> Path:
        digest_hex = base64.b64decode(code_sha256).hex()[:16]
        target = self._work_dir / f"{name}-{digest_hex}" / "task"
        if target.is_dir():
            return target
        zip_bytes = self._code_source(function_arn)
        actual = base64.b64encode(hashlib.sha256(zip_bytes).digest()).decode()
        if actual != code_sha256:
            raise RuntimeError(f"deployed code of {name} does not match its CodeSha256 ({actual} != {code_sha256})")
        staging = target.parent / f"staging-{uuid.uuid4().hex}"
        with zipfile.ZipFile(io.BytesIO(zip_bytes)) as archive:
            archive.extractall(staging)
        with contextlib.suppress(OSError):  # another poller unpacked the same version first
            staging.rename(target)
        return target

    def launch(self, runtime: str) -> Launch:
        """How this runtime's processes start (the Python is looked for once per runtime)."""
        with self._lock:
            known = self._launches.get(runtime)
        if known is None:  # found outside the lock: looking for a Python runs it (other invocations go on)
            known = launch_for(runtime)
            with self._lock:
                known = self._launches.setdefault(runtime, known)
        return known

    def invalidate(self) -> None:
        """Forget every cached configuration: the next invocation reads it from the Lambda API."""
        with self._lock:
            self._specs.clear()

    def credentials(self, function_arn: str) -> RoleCredentials:
        """The function's execution-role credentials (RoleNotAssumable when Lambda could not assume the role)."""
        spec = self.spec(function_arn)
        return self._roles.credentials(spec.role, spec.name, spec.region)

    def _acquire(self, spec: FunctionSpec, credentials: RoleCredentials) -> tuple[WorkerProcess, bool]:
        stale: list[WorkerProcess] = []
        with self._lock:
            if self._closed:
                raise RuntimeError("the runtime is shutting down")
            pool = self._idle.setdefault(spec.arn, [])
            worker = None
            while pool:
                candidate = pool.pop()
                if candidate.spec == spec and candidate.credentials == credentials and candidate.alive:
                    worker = candidate
                    break
                stale.append(candidate)
        for old in stale:
            old.close()
        cold = worker is None
        if worker is None:
            worker = WorkerProcess(spec, self.endpoint, credentials, self.launch(spec.runtime))
        with self._lock:
            self._busy.add(worker)
        return worker, cold

    def _release(self, worker: WorkerProcess) -> None:
        with self._lock:
            self._busy.discard(worker)
            keep = worker.alive and not self._closed
            if keep:
                self._idle.setdefault(worker.spec.arn, []).append(worker)
        if not keep:
            worker.close()

    def invoke(self, function_arn: str, event: dict[str, Any]) -> Invocation:
        """Run the function on `event`; raises Throttled when its or the account's concurrency is used up."""
        spec = self.spec(function_arn)
        if self.on_invoke is not None:
            self.on_invoke(spec)
        credentials = self._roles.credentials(spec.role, spec.name, spec.region)
        try:  # this function's executions now, this one included
            concurrent = self.concurrency.acquire(spec.region, spec.name, spec.reserved_concurrency)
        except Throttled:
            if self._metrics is not None:
                self._metrics.record_throttle(spec)
            raise
        try:
            worker, _cold = self._acquire(spec, credentials)
            started_ms = int(time.time() * 1000)
            try:
                invocation = worker.invoke(event, str(uuid.uuid4()))
            finally:
                self._release(worker)
        finally:
            self.concurrency.release(spec.region, spec.name)
        # Lambda delivers the function's logs with its execution role too.
        self._logs.write(spec, worker.log_stream, invocation, started_ms, credentials)
        if self._metrics is not None:
            self._metrics.record(spec, invocation, concurrent)
        return invocation

    def reconcile(self) -> None:
        """Follow the Lambda API, as Lambda does: the warm processes of a function that was deleted are stopped and
        its streams forgotten (a new function of the same name starts cold, in new streams); those of a function
        whose code or configuration changed are replaced. Called by the mapping watcher every half second; the
        configuration is re-read at most once a second, so a process outlives its function by under 2 s."""
        with self._lock:
            arns = [arn for arn, pool in self._idle.items() if pool]
        for arn in arns:
            current = or_none(lambda arn=arn: self.spec(arn))
            if current is None:
                self.forget(arn)
                continue
            with self._lock:
                pool = self._idle.get(arn, [])
                stale = [w for w in pool if w.spec != current or not w.alive]
                self._idle[arn] = [w for w in pool if w not in stale]
            for worker in stale:
                worker.close()

    def forget(self, function_arn: str) -> None:
        """A deleted function: stop its idle processes, drop its configuration and its log streams."""
        with self._lock:
            workers = self._idle.pop(function_arn, [])
            self._specs.pop(function_arn, None)
            self._in_effect.pop(function_arn, None)
        for worker in workers:
            worker.close()
        for region, group in {(w.spec.region, w.spec.log_group) for w in workers}:
            self._logs.forget(region, group)

    def worker_pids(self, busy_only: bool = False) -> list[int]:
        """Live function processes; `busy_only`: those starting up or running an invocation right now."""
        with self._lock:
            idle = [] if busy_only else [w for pool in self._idle.values() for w in pool]
            return [w.pid for w in [*idle, *self._busy] if w.alive]

    def close(self) -> None:
        with self._lock:
            self._closed = True
            workers = [w for pool in self._idle.values() for w in pool] + list(self._busy)
            self._idle.clear()
            self._busy.clear()
        for worker in workers:
            worker.close()
