"""The Lambda runtime service: keeps one set of pollers per enabled SQS event source mapping.

Mappings are read from the Lambda API every half second, so creating, disabling, re-configuring or deleting a
mapping with any client takes effect as it does on AWS.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from orderflow.arns import parse_arn
from orderflow.aws import connect
from orderflow.local.runtime.concurrency import ACCOUNT_CONCURRENCY, Concurrency, PollerScaling, ScalingRules
from orderflow.local.runtime.credentials import ExecutionRoles, RoleCredentials
from orderflow.local.runtime.functions import CodeSource, FunctionHost
from orderflow.local.runtime.logs import LogWriter
from orderflow.local.runtime.metrics import LambdaMetrics
from orderflow.local.runtime.poller import MappingConfig, QueuePoller, mapping_config
from orderflow.local.server.state import LOCAL_CREDENTIALS

log = logging.getLogger("orderflow.local.runtime")

# States in which Lambda's pollers read the queue: not yet while Creating or Enabling, no more once Disabling or
# Deleting (Lambda API Reference, EventSourceMappingConfiguration.State).
ACTIVE_STATES = ("Enabled", "Updating")
# How long a stopped mapping's pollers may take to finish the receive each may be in (LONG_POLL_SECONDS each, slower
# on a busy machine) before "stopped" is logged anyway.
STOP_RECEIVING_SECONDS = 10.0


WORK_DIR_PREFIX = "orderflow-lambda-"


def sweep_dead_work_dirs(root: Path | None = None) -> list[Path]:
    """Remove the unpacked code of runtimes whose process is gone (a killed daemon cannot clean up after itself)."""
    removed = []
    for path in (root or Path(tempfile.gettempdir())).glob(f"{WORK_DIR_PREFIX}*-*"):
        owner = path.name.removeprefix(WORK_DIR_PREFIX).split("-", 1)[0]
        if owner.isdigit() and not psutil.pid_exists(int(owner)) and path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    if removed:
        log.info("removed %d work folder(s) of runtimes that are gone", len(removed))
    return removed


@dataclass
class _Mapping:
    config: MappingConfig
    scaling: PollerScaling
    reported: int = 0  # the concurrent batches last logged
    pollers: list[tuple[QueuePoller, threading.Event]] = field(default_factory=list)

    @property
    def all_pollers(self) -> list[QueuePoller]:
        return [poller for poller, _stop in self.pollers]


def _own_work_dir() -> tempfile.TemporaryDirectory[str]:
    """A work folder named after this process, so that a later start can tell a dead runtime's leftovers (kill -9)
    from a live one's, and sweeps those leftovers first."""
    sweep_dead_work_dirs()
    return tempfile.TemporaryDirectory(prefix=f"{WORK_DIR_PREFIX}{os.getpid()}-")


class LambdaRuntime:
    def __init__(
        self,
        endpoint: str,
        code_source: CodeSource,
        regions: Callable[[], Iterable[str]],
        lambda_may_assume: Callable[[str], bool],
        report_processing_result: Callable[[str, str], None] = lambda uuid, result: None,
        scaling: ScalingRules | None = None,
        concurrency: Concurrency | None = None,
        sync_interval: float = 0.5,
        work_dir: Path | None = None,
        queue_client: Callable[[str, RoleCredentials], Any] | None = None,
        publish_metrics: bool = True,
    ) -> None:
        self.endpoint = endpoint
        self._report = report_processing_result
        # How pollers reach SQS (signed with the role): over HTTP by default, or in-process beside the queues.
        self._queue_client = queue_client or (
            lambda region, credentials: self._connect(region, credentials).client("sqs")
        )
        self._regions = regions
        self.scaling = scaling or ScalingRules()
        self.concurrency = concurrency or Concurrency(ACCOUNT_CONCURRENCY)
        self._sync_interval = sync_interval
        self._clients: dict[tuple[str, str], Any] = {}
        self._clients_lock = threading.Lock()
        self._tmp = _own_work_dir() if work_dir is None else None
        self._log_writer = LogWriter(lambda region, credentials: self.client("logs", region, credentials))
        # Lambda publishes its metrics itself, not with the function's role.
        self.metrics = LambdaMetrics(lambda region: self.client("cloudwatch", region)) if publish_metrics else None
        self.host = FunctionHost(
            endpoint,
            code_source,
            lambda region: self.client("lambda", region),
            self._log_writer,
            work_dir or Path(self._tmp.name),
            ExecutionRoles(lambda region: self.client("sts", region), lambda_may_assume),
            self.metrics,
            self.concurrency,
        )
        self._mappings: dict[str, _Mapping] = {}
        self._stopped = threading.Event()
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="mapping-watcher", daemon=True)

    def client(self, service: str, region: str, credentials: RoleCredentials | None = None) -> Any:
        """A shared client: the runtime's own (unrestricted, as the Lambda service is) or, with `credentials`, one
        signed with a function's execution role."""
        with self._clients_lock:
            key = (service, region, credentials.access_key_id if credentials else "")
            if key not in self._clients:
                self._clients[key] = self._connect(region, credentials).client(service)
            return self._clients[key]

    def _connect(self, region: str, credentials: RoleCredentials | None) -> Any:
        arguments = credentials.client_arguments() if credentials else LOCAL_CREDENTIALS
        return connect(region, endpoint_url=self.endpoint, credentials=arguments)

    def start(self) -> LambdaRuntime:
        self._thread.start()
        return self

    def changed(self) -> None:
        """A function or mapping changed through the Lambda API: the next invocation reads the new configuration,
        and the watcher re-reads the mappings now rather than at its next interval."""
        self.host.invalidate()
        self.host.concurrency.invalidate()
        self._wake.set()

    def _watch(self) -> None:
        while not self._stopped.is_set():
            try:
                self.sync()
            except Exception:  # outlive any single failure, as Lambda does
                log.exception("could not read event source mappings")
            self._wake.wait(self._sync_interval)
            self._wake.clear()

    def _enabled_mappings(self) -> dict[str, MappingConfig]:
        found: dict[str, MappingConfig] = {}
        for region in self._regions():
            paginator = self.client("lambda", region).get_paginator("list_event_source_mappings")
            for page in paginator.paginate():
                for mapping in page.get("EventSourceMappings", []):
                    if (
                        mapping.get("EventSourceArn", "").startswith("arn:aws:sqs:")
                        and mapping.get("State") in ACTIVE_STATES
                    ):
                        found[mapping["UUID"]] = mapping_config(mapping)
        return found

    def sync(self) -> None:
        """Start pollers for new mappings, re-configure and re-scale the others, stop disabled or deleted ones."""
        wanted = self._enabled_mappings()
        for uuid, config in wanted.items():
            mapping = self._mappings.get(uuid)
            if mapping is None:
                mapping = self._mappings[uuid] = _Mapping(config, self.scaling.for_mapping(config.maximum_concurrency))
                log.info("mapping %s: polling %s -> %s", uuid, config.queue_arn, config.function_arn)
            mapping.config = config
            mapping.scaling.maximum = config.maximum_concurrency
            self._scale(mapping)
        for uuid in set(self._mappings) - set(wanted):
            self._stop_mapping(uuid)
        self.host.reconcile()

    def batches(self, uuid: str) -> tuple[int, int] | None:
        """(batches the scaling rule allows now, pollers running) for a mapping, or None when it is not polled."""
        mapping = self._mappings.get(uuid)
        if mapping is None:
            return None
        return mapping.scaling.rule(time.monotonic()), len(mapping.pollers)

    def _scale(self, mapping: _Mapping) -> None:
        """As many pollers as the scaling rule allows now (each runs one batch at a time); extra ones stop after
        their batch."""
        target = mapping.scaling.target(time.monotonic())
        region = parse_arn(mapping.config.queue_arn).region
        while len(mapping.pollers) < target:
            # One client per poller (over HTTP, each holds its own connection for its long polls), as the role.
            stop = threading.Event()
            poller = QueuePoller(
                lambda m=mapping: m.config,
                lambda credentials: self._queue_client(region, credentials),
                self.host,
                stop,
                self._report,
                mapping.scaling.observe,
            )
            mapping.pollers.append((poller, stop))
            poller.start()
        if len(mapping.pollers) > target:
            for _poller, stop in mapping.pollers[target:]:
                stop.set()
            del mapping.pollers[target:]
        if target != mapping.reported:
            log.info("mapping %s: %d concurrent batch(es)", mapping.config.uuid, target)
            mapping.reported = target

    def _stop_mapping(self, uuid: str, wait: bool = True) -> _Mapping:
        """Stop a mapping's pollers; with `wait`, "stopped" is logged (from a thread of its own, so that the watcher
        goes on following the other mappings) once none of them can receive any more. A poller may still be
        finishing an invocation then: it receives nothing after it."""
        mapping = self._mappings.pop(uuid)
        for _poller, stop in mapping.pollers:
            stop.set()
        if wait:
            threading.Thread(
                target=self._report_stopped, args=(uuid, mapping), name="mapping-stop", daemon=True
            ).start()
        else:
            log.info("mapping %s stopped", uuid)
        return mapping

    @staticmethod
    def _report_stopped(uuid: str, mapping: _Mapping) -> None:
        # A poller checks its stop flag between receives (each at most LONG_POLL_SECONDS): within a few seconds none
        # is receiving, even while one still runs a long invocation (which once held the watcher for 20 s).
        deadline = time.monotonic() + STOP_RECEIVING_SECONDS
        for poller in mapping.all_pollers:
            poller.join_receiving(max(0.0, deadline - time.monotonic()))
        log.info("mapping %s stopped", uuid)

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)
        # Not waiting here: closing the host below ends in-flight invocations, then every poller is joined.
        stopped = [self._stop_mapping(uuid, wait=False) for uuid in list(self._mappings)]
        # Closing the host ends in-flight invocations (their messages return after the visibility timeout).
        self.host.close()
        for mapping in stopped:
            for poller in mapping.all_pollers:
                poller.join(timeout=5)
        self._log_writer.close()
        if self.metrics is not None:
            self.metrics.close()
        if self._tmp is not None:
            self._tmp.cleanup()
