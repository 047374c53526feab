"""The executor runs each step once its dependencies are done, independent steps side by side."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from orderflow.provision.base import Change
from orderflow.provision.executor import down_dependencies, run_graph, up_dependencies
from orderflow.provision.planner import RESOURCES, DownStep, UpStep


def _up_steps() -> list[UpStep]:
    return [UpStep(r, None, Change(r.key, r.kind, r.key, "create")) for r in RESOURCES]


def test_every_resource_depends_only_on_resources_planned_before_it():
    seen: set[str] = set()
    for resource in RESOURCES:
        assert set(resource.depends_on) <= seen, resource.key
        seen.add(resource.key)


def test_up_waits_for_dependencies_and_down_for_dependents():
    up = up_dependencies(_up_steps())
    assert up["function"] == {"role", "log_group"}
    assert up["trigger"] == {"function", "queue", "role"}
    assert up["table"] == set()
    down = down_dependencies([DownStep(r, None, "delete", r.key) for r in reversed(RESOURCES)])
    assert down["queue"] == {"subscription", "trigger"}
    assert down["role"] == {"function", "trigger"}
    assert down["trigger"] == set()


def test_independent_steps_run_side_by_side_and_dependents_after():
    dependencies = {"a": set(), "b": set(), "c": {"a", "b"}}
    both_started = threading.Barrier(2, timeout=30)  # fails unless a and b run at the same time
    log: list[str] = []

    def run(key: str) -> None:
        if key in ("a", "b"):
            both_started.wait()
        log.append(key)

    run_graph(["a", "b", "c"], dependencies, run, concurrent=True)
    assert log[-1] == "c" and set(log) == {"a", "b", "c"}


def test_after_a_failure_nothing_new_starts_and_the_first_error_is_raised():
    ran: list[str] = []

    def run(key: str) -> None:
        ran.append(key)
        if key == "a":
            raise ValueError("a broke")

    with pytest.raises(ValueError, match="a broke"):
        run_graph(["a", "b"], {"a": set(), "b": {"a"}}, run, concurrent=True)
    assert ran == ["a"]


def test_steps_that_can_never_run_are_an_error_not_a_hang():
    with pytest.raises(RuntimeError, match="depend on each other"):
        run_graph(["a", "b"], {"a": {"b"}, "b": {"a"}}, lambda key: None, concurrent=True)


def test_ctrl_c_returns_at_once_and_tells_running_steps_to_stop():
    # The handler this test relies on, installed: a shell starts a background job with SIGINT ignored, and the signal
    # it sends itself would then never arrive (the test hung forever).
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        _interrupt_a_run()
    finally:
        signal.signal(signal.SIGINT, previous)


def _interrupt_a_run() -> None:
    cancelled = threading.Event()
    stopped = threading.Event()

    def run(key: str) -> None:
        if key == "interrupt":
            os.kill(os.getpid(), signal.SIGINT)  # the user's Ctrl-C, delivered to the main thread
            return
        while not cancelled.wait(0.05):  # a step waiting on AWS, between polls
            pass
        stopped.set()

    with pytest.raises(KeyboardInterrupt):
        run_graph(["waiting", "interrupt"], {"waiting": set(), "interrupt": set()}, run, True, cancelled)
    assert stopped.wait(30)
