"""Lambda's concurrency, counted as Lambda counts it, and the SQS poller's scaling rule.

Sources (docs/fidelity.md, "Concurrency"):
- Lambda Developer Guide, "Understanding Lambda function scaling" and "Configuring reserved concurrency": an account
  has a concurrency limit per region (1,000 by default; new accounts may start lower). A function with reserved
  concurrency R runs at most R instances at once (R = 0: every invocation is throttled) and R is taken out of the
  account's pool; the other functions share what is left (the unreserved pool). An invocation beyond either limit
  is throttled (TooManyRequestsException, Reason ReservedFunctionConcurrentInvocationLimitExceeded or
  ConcurrentInvocationLimitExceeded).
- Lambda Developer Guide, "Configuring scaling behavior for SQS event source mappings": a mapping starts with five
  concurrent batches; while messages are still available it adds up to 300 more per minute, at most 1,000; when
  traffic is low it scales back to five. ScalingConfig.MaximumConcurrency (2-1,000) caps one mapping. The mapping
  does not account for reserved concurrency: a batch it received but cannot invoke is throttled, and its messages
  return after the visibility timeout with their receive count raised.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass

ACCOUNT_CONCURRENCY = 1000
INITIAL_BATCHES = 5
BATCHES_ADDED_PER_MINUTE = 300
MAX_BATCHES = 1000
SCALING_MINUTE_SECONDS = 60.0

RESERVED_LIMIT = "ReservedFunctionConcurrentInvocationLimitExceeded"
ACCOUNT_LIMIT = "ConcurrentInvocationLimitExceeded"


class Throttled(Exception):
    """Lambda refused to start an execution: the function's or the account's concurrency is used up."""

    error_code = "TooManyRequestsException"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def admission(
    reserved: int | None, running: int, unreserved_running: int, account_limit: int, reserved_total: int
) -> Throttled | None:
    """Whether one more execution of a function may start (None) or why it is throttled. Pure.

    `running`: this function's executions now; `unreserved_running`: the executions of every function without a
    reservation; `reserved_total`: the sum of every reservation in the account and region."""
    if reserved is not None:
        if running >= reserved:
            return Throttled(RESERVED_LIMIT, "Rate Exceeded.")
        return None
    if unreserved_running >= account_limit - reserved_total:
        return Throttled(ACCOUNT_LIMIT, "Rate Exceeded.")
    return None


class Concurrency:
    """The executions in flight, per function and in each region's unreserved pool; admits or throttles each new one.

    `reservations(region)`: every function's reserved concurrency there (name -> R), read from the embedded AWS's
    state, so a reservation made by any client counts at once; None: only the reservation each caller passes is
    known (read by GetFunction)."""

    def __init__(self, account_limit: int, reservations: Callable[[str], dict[str, int]] | None = None) -> None:
        self.account_limit = account_limit
        self._reservations = reservations
        self._lock = threading.Lock()
        self._running: dict[tuple[str, str], int] = {}  # (region, function name) -> executions now
        # The reservations read, per region, until the next Lambda write (`invalidate`): reading every function's
        # on each invocation cost the hot path a scan of the account's functions.
        self._known: dict[str, dict[str, int]] = {}
        self._generation = 0

    def invalidate(self) -> None:
        """A Lambda write (PutFunctionConcurrency among them): read the reservations again."""
        with self._lock:
            self._generation += 1
            self._known.clear()

    def _reservations_in(self, region: str) -> dict[str, int]:
        known = self._known.get(region)
        if known is None:
            assert self._reservations is not None
            generation = self._generation
            known = self._reservations(region)
            with self._lock:
                if generation == self._generation:  # not one read before a write and kept after it
                    self._known[region] = known
        return known

    def acquire(self, region: str, function: str, reserved: int | None) -> int:
        """Count one more execution of `function`, or raise Throttled. Returns its executions now, this one too."""
        if self._reservations is not None:
            reservations = self._reservations_in(region)
            reserved = reservations.get(function)
        else:
            reservations = {} if reserved is None else {function: reserved}
        with self._lock:
            running = self._running.get((region, function), 0)
            unreserved = sum(
                n for (r, name), n in self._running.items() if r == region and reservations.get(name) is None
            )
            refused = admission(reserved, running, unreserved, self.account_limit, sum(reservations.values()))
            if refused is not None:
                raise refused
            self._running[(region, function)] = running + 1
            return running + 1

    def release(self, region: str, function: str) -> None:
        with self._lock:
            left = self._running.get((region, function), 0) - 1
            if left > 0:
                self._running[(region, function)] = left
            else:
                self._running.pop((region, function), None)

    def executions(self, region: str, function: str) -> int:
        with self._lock:
            return self._running.get((region, function), 0)


# How many batches this machine runs at once per mapping, at most, whatever the scaling rule allows: every batch in
# flight is a Python process. Beyond it a poller does not receive (no message waits in flight for a process).
DEFAULT_MACHINE_CAPACITY = max(8, 4 * (os.cpu_count() or 2))


@dataclass(frozen=True)
class ScalingRules:
    """The scaling rule's first batches (AWS: five), its minute (at the embedded AWS's time scale) and this
    machine's capacity."""

    initial: int = INITIAL_BATCHES
    minute: float = SCALING_MINUTE_SECONDS
    capacity: int = DEFAULT_MACHINE_CAPACITY

    def for_mapping(self, maximum: int | None) -> PollerScaling:
        return PollerScaling(minute=self.minute, maximum=maximum, capacity=self.capacity, initial=self.initial)


@dataclass
class PollerScaling:
    """How many batches one mapping processes at once, by the SQS scaling rule, on a clock the caller passes.

    `observe(backlog=True)` when a receive came back full (messages are still available); each minute (of the
    embedded AWS's time scale) with a backlog adds BATCHES_ADDED_PER_MINUTE, a minute without one returns to
    INITIAL_BATCHES. `maximum` is the mapping's MaximumConcurrency, `capacity` what this machine can run at once."""

    minute: float = SCALING_MINUTE_SECONDS
    maximum: int | None = None
    capacity: int = MAX_BATCHES
    initial: int = INITIAL_BATCHES
    batches: int = 0
    window_started: float | None = None
    backlog: bool = False

    def observe(self, backlog: bool) -> None:
        self.backlog = self.backlog or backlog

    def rule(self, now: float) -> int:
        """The batches AWS would process now (before this machine's capacity)."""
        if self.window_started is None:
            self.window_started, self.batches = now, self.initial
        while now - self.window_started >= self.minute:
            self.window_started += self.minute
            self.batches = min(MAX_BATCHES, self.batches + BATCHES_ADDED_PER_MINUTE) if self.backlog else self.initial
            self.backlog = False
        return min(self.batches, self.maximum or MAX_BATCHES)

    def target(self, now: float) -> int:
        return max(1, min(self.rule(now), self.capacity))
