"""Shared test plumbing: isolated AWS environment, call counting and fault injection through botocore events."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

# Reads never change anything; everything else counts as a write.
READ_PREFIXES = ("Get", "List", "Describe", "Head")


@pytest.fixture(autouse=True)
def isolated_aws_env(no_moto_patch_leaks, monkeypatch, tmp_path):
    """No test may reach real AWS or read the developer's credentials, config or orderflow state. (It asks for
    no_moto_patch_leaks first so that a test's own monkeypatch of moto is undone before that check runs.)"""
    for name in (
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ENDPOINT_URL",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "ORDERFLOW_STACK",
        "ORDERFLOW_LOCAL",
        "ORDERFLOW_ENDPOINT_URL",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("ORDERFLOW_HOME", str(tmp_path / "orderflow-home"))


def _moto_as_it_is() -> dict[tuple[type, str], object]:
    from orderflow.local.patches import moto as moto_patches

    return {(owner, name): owner.__dict__.get(name) for owner, name in moto_patches.patched_attributes()}


MOTO_AS_IT_IS = _moto_as_it_is()  # taken at collection, before any embedded AWS has started


def leaked_patches() -> list[str]:
    """moto's attributes that are not moto's own while no embedded AWS runs: a patch outlived its embedded AWS."""
    from orderflow.local.patches import moto as moto_patches

    if moto_patches.PATCHES.applied:
        return []
    return [
        f"{getattr(owner, '__module__', None) or 'module'}.{owner.__name__}.{name}"  # a class's, or a module's
        for (owner, name), original in MOTO_AS_IT_IS.items()
        if owner.__dict__.get(name) is not original
    ]


def _daemons(home_under: Path) -> dict[int, str]:
    """Embedded-AWS daemons this test session started (their ORDERFLOW_HOME is one of its temporary folders; a
    daemon of another run on the machine, a CI run beside this one say, is none of its business): pid -> command."""
    import psutil

    found = {}
    for process in psutil.process_iter(["pid", "cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if "orderflow.local.daemon" not in command:
            continue
        with contextlib.suppress(psutil.Error):
            if process.environ().get("ORDERFLOW_HOME", "").startswith(str(home_under)):
                found[process.info["pid"]] = command
    return found


@pytest.fixture(scope="session", autouse=True)
def no_daemon_left_behind(tmp_path_factory):
    """Every daemon a test starts is stopped whatever the outcome; one left running is stopped here and fails the
    run (a failed end-to-end test once left two serving for 16 minutes after the run)."""
    import psutil

    base = tmp_path_factory.getbasetemp()
    yield
    left = _daemons(base)
    for pid in left:
        with contextlib.suppress(psutil.Error):
            psutil.Process(pid).kill()
    assert left == {}, f"embedded-AWS daemons left running by the tests (now killed): {left}"


@pytest.fixture(scope="session", autouse=True)
def moto_as_it_is_after_the_run():
    """Whatever ran, in whatever order: when the run ends no embedded AWS holds moto patched."""
    yield
    from orderflow.local.patches import moto as moto_patches

    assert not moto_patches.PATCHES.applied, "an embedded AWS started in this process was never stopped"
    assert leaked_patches() == []


@pytest.fixture(autouse=True)
def no_moto_patch_leaks():
    """Every test starts and ends with moto as it is, unless an embedded AWS (its own or its module's) runs."""
    assert leaked_patches() == [], "a moto patch leaked past its embedded AWS before this test"
    yield
    assert leaked_patches() == [], "a moto patch leaked past its embedded AWS"


@dataclass
class CallLog:
    """Every AWS operation a session's clients call, split into reads and writes."""

    calls: list[str] = field(default_factory=list)

    def __call__(self, model, **_kwargs):
        self.calls.append(model.name)

    @property
    def reads(self) -> list[str]:
        return [c for c in self.calls if c.startswith(READ_PREFIXES)]

    @property
    def writes(self) -> list[str]:
        return [c for c in self.calls if not c.startswith(READ_PREFIXES)]

    def clear(self) -> None:
        self.calls.clear()


def count_calls(aws) -> CallLog:
    log = CallLog()
    aws.register("before-call", log)
    return log


class _HttpStatus:
    def __init__(self, status_code: int) -> None:
        self.status_code = status_code
        self.headers: dict[str, str] = {}


def inject_error(aws, event: str, code: str, message: str, times: int | None = None, status: int = 400):
    """Make `event` (e.g. 'before-call.lambda.CreateFunction') fail with an AWS error `times` times (None: always)."""
    state = {"left": times}

    def fail(**_kwargs):
        if state["left"] is not None:
            if state["left"] <= 0:
                return None
            state["left"] -= 1
        return _HttpStatus(status), {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {}}

    aws.register(event, fail)
    return state
