"""`local start --realistic`: AWS's control-plane timing, as data and bookkeeping.

moto applies every call at once. AWS does not: a new role is not assumable for a while, new policies take a while to
apply, functions are Pending, mappings Creating, tables CREATING, a deleted queue's name stays blocked. `DELAYS` is
the one table of those durations, each with its source (docs/fidelity.md repeats it); `--time-scale` multiplies them.

`ControlPlane` holds what is in transition, on one injectable clock: states (a function Pending until …) and
propagations (an old document applies until the change has propagated: IAM's inline policies, a queue's Policy).
The per-service handlers (realism/services.py) start transitions and refuse what AWS refuses meanwhile.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
        Delay(
            "mapping_updated",
            5.0,
            "UpdateEventSourceMapping: State Updating (Enabling or Disabling when Enabled changes), then settled",
            "as above",
        ),
        Delay("mapping_deleted", 10.0, "DeleteEventSourceMapping: State Deleting, then gone", "as above"),
        Delay(
            "table_active",
            8.0,
            "CreateTable: TableStatus CREATING, then ACTIVE",
            "DynamoDB API Reference, CreateTable ('CreateTable is an asynchronous operation … TableStatus set to "
            "CREATING … ACTIVE'); seconds for an on-demand table, commonly observed",
        ),
        Delay(
            "table_updated",
            5.0,
            "UpdateTable: TableStatus UPDATING, then ACTIVE (reads and writes still served)",
            "DynamoDB API Reference, UpdateTable ('UpdateTable is an asynchronous operation … TableStatus changes "
            "from ACTIVE to UPDATING … you can still perform read and write operations on the table')",
        ),
        Delay(
            "function_inactive",
            14 * 24 * 3600.0,
            "a function idle this long is Inactive (an invoke fails and reactivates it; an update reactivates it)",
            "Lambda Developer Guide, 'Lambda function states' (Inactive: 'idle long enough for Lambda to reclaim "
            "the external resources'; the duration is not documented: two weeks commonly observed)",
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


def critical_path(scale: float = 1.0) -> float:
    """The longest chain of waits `up` cannot avoid on a fresh stack: the function can only be created once its role
    is assumable, the mapping only once the function exists and the role's policies apply, and `up` is done when the
    mapping is Enabled; the table becomes ACTIVE alongside."""
    d = {name: delay.seconds * scale for name, delay in DELAYS.items()}
    function_ready = d["role_assumable"] + d["function_active"]
    return max(d["table_active"], max(function_ready, d["policy_applies"]) + d["mapping_enabled"])


class ControlPlane:
    """What is in transition, on one clock. States: (kind, key) -> (state, until); a transition can end with an
    action (the deferred delete of a mapping or table), run when it is due: by a background thread on the real clock,
    or by `run_due()` for a test that moves its own clock. Propagations: (kind, key) -> (until, what applies
    meanwhile)."""

    def __init__(self, scale: float, clock: Callable[[], float] = time.monotonic, background: bool = True) -> None:
        if scale <= 0:
            raise ValueError("the time scale must be positive")
        self.scale = scale
        self.clock = clock
        self._states: dict[tuple[str, Any], tuple[str, float]] = {}
        self._propagating: dict[tuple[str, Any], tuple[float, Any]] = {}
        self._due: list[tuple[float, tuple[str, Any], Callable[[], None]]] = []
        self._touched: dict[tuple[str, Any], float] = {}
        self._reasons: dict[tuple[str, Any], str] = {}
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

    # -- activity and reasons: what AWS reports of a resource beyond its state ---------------------------------
    def touch(self, kind: str, key: Any) -> None:
        """The resource was used or changed now (a function invoked or updated): it is not idle."""
        with self._lock:
            self._touched[(kind, key)] = self.clock()

    def idle(self, kind: str, key: Any, delay: str) -> bool:
        """Unused for at least `delay` (only resources this plane has seen created or used are ever idle)."""
        with self._lock:
            since = self._touched.get((kind, key))
        return since is not None and self.clock() - since >= self.seconds(delay)

    def set_reason(self, kind: str, key: Any, reason: str | None) -> None:
        with self._lock:
            if reason is None:
                self._reasons.pop((kind, key), None)
            else:
                self._reasons[(kind, key)] = reason

    def reason(self, kind: str, key: Any) -> str | None:
        with self._lock:
            return self._reasons.get((kind, key))

    # -- propagation: a change applies only after a while, and meanwhile what applied before still does -----------
    def changed(self, kind: str, key: Any, previous: Any, delay: str) -> None:
        until = self.clock() + self.seconds(delay)
        with self._lock:
            earlier = self._propagating.get((kind, key))
            # Two quick changes: what applies meanwhile is still what applied before the first.
            meanwhile = earlier[1] if earlier and earlier[0] > self.clock() else previous
            self._propagating[(kind, key)] = (until, meanwhile)

    def in_effect(self, kind: str, key: Any, current: Any) -> Any:
        """What applies now: the previous value until the change has propagated, then `current`."""
        with self._lock:
            found = self._propagating.get((kind, key))
        return found[1] if found and found[0] > self.clock() else current

    def propagating(self, kind: str, where: Callable[[Any], bool]) -> dict[Any, Any]:
        """The changes of a kind whose key matches and that have not propagated: key -> what applies meanwhile."""
        now = self.clock()
        with self._lock:
            return {
                k: doc
                for (k_kind, k), (until, doc) in self._propagating.items()
                if k_kind == kind and until > now and where(k)
            }

    def policy_changed(self, role_arn: str, name: str, previous: Any) -> None:
        """IAM: a new, changed or deleted inline policy keeps its previous effect until it has propagated."""
        self.changed("policy", (role_arn, name), previous, "policy_applies")

    def pending_policies(self, role_arn: str) -> dict[str, Any]:
        """Inline policies of a role whose change has not propagated: name -> the document that still applies."""
        return {key[1]: doc for key, doc in self.propagating("policy", lambda key: key[0] == role_arn).items()}

    def stop(self) -> None:
        self._stopped.set()
        self._wake.set()
