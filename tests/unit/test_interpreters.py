"""Which Python runs a function (interpreters.py) and how its process is started (launch.py)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import pytest

from orderflow.local.runtime.environment import interpreters, launch

OURS = f"python3.{sys.version_info.minor}"


@pytest.fixture(autouse=True)
def fresh_cache():
    interpreters.find.cache_clear()
    yield
    interpreters.find.cache_clear()


def fake_python(folder: Path, version: str) -> Path:
    """An executable that answers the probe as a Python of `version` whose real path is elsewhere (as a shim's is)."""
    major, minor, micro = version.split(".")
    executable = folder / f"python{major}.{minor}"
    executable.parent.mkdir(parents=True, exist_ok=True)
    executable.write_text(
        f'#!/bin/sh\necho \'[[{major}, {minor}, {micro}], "/real/python{major}.{minor}", "/p", "/b"]\'\n'
    )
    executable.chmod(0o755)
    return executable


def test_the_runtime_of_this_python_runs_on_this_python():
    found = interpreters.find(OURS)
    assert found.is_ours and not found.stands_in


def test_a_runtime_found_under_pyenv_or_uv_runs_there(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "pyenv"))
    monkeypatch.setenv("UV_PYTHON_INSTALL_DIR", str(tmp_path / "uv"))
    fake_python(tmp_path / "pyenv" / "versions" / "3.42.1" / "bin", "3.42.1")
    found = interpreters.find("python3.42")
    assert (found.executable, found.version, found.stands_in) == ("/real/python3.42", "3.42.1", False)
    fake_python(tmp_path / "uv" / "cpython-3.43.0-linux-x86_64-gnu" / "bin", "3.43.0")
    assert interpreters.find("python3.43").version == "3.43.0"


def test_a_runtime_too_old_for_the_bundled_boto3_runs_on_this_python_and_is_said_once(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("PATH", str(tmp_path))
    fake_python(tmp_path, "3.9.18")  # there, but botocore (Requires-Python >= 3.10) cannot load on it
    monkeypatch.setattr(interpreters, "bundled_minimum", lambda: (3, 10))
    with caplog.at_level(logging.WARNING, logger="orderflow.local.runtime"):
        first, second = interpreters.find("python3.9"), interpreters.find("python3.9")
    assert first is second and first.is_ours and first.stands_in
    [said] = [r.getMessage() for r in caplog.records]
    assert said.startswith(f"python3.9 functions run on Python {sys.version.split()[0]} on the embedded AWS: the boto3")
    assert interpreters.too_old_for_bundled("python3.10") is None  # the boundary: 3.10 runs on its own Python


def test_a_missing_runtime_is_stood_in_for_and_said_once(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setenv("PYENV_ROOT", str(tmp_path / "none"))
    fake_python(tmp_path, "3.41.0").rename(tmp_path / "python3.40")  # says it is 3.41: not the one asked for
    with caplog.at_level(logging.WARNING, logger="orderflow.local.runtime"):
        first, second = interpreters.find("python3.40"), interpreters.find("python3.40")
    assert first is second and first.is_ours and first.stands_in
    assert [r.getMessage() for r in caplog.records] == [first.stand_in_warning()]
    assert first.stand_in_warning().startswith("no python3.40 on this machine (PATH, pyenv, uv)")


def test_the_client_is_awslambdaric_where_it_installs_unless_one_is_forced(monkeypatch):
    monkeypatch.delenv(launch.CLIENT_VARIABLE, raising=False)
    expected = "awslambdaric" if sys.platform.startswith("linux") and launch.has_awslambdaric() else "orderflow"
    assert launch.choose_client() == expected
    monkeypatch.setenv(launch.CLIENT_VARIABLE, "orderflow")
    chosen = launch.launch_for(OURS)
    assert chosen.client == "orderflow" and chosen.libraries == ()
    assert chosen.command("index.lambda_handler")[-2:] == [str(launch.OWN_CLIENT), "index.lambda_handler"]
    assert chosen.environment(Path("/task")) == {"PYTHONPATH": "/task"}


@pytest.mark.skipif(not launch.has_awslambdaric(), reason="awslambdaric installs on Linux only")
def test_another_python_gets_links_to_the_bundled_libraries_and_awslambdarics_transport(tmp_path, monkeypatch):
    monkeypatch.setenv(launch.CLIENT_VARIABLE, "awslambdaric")
    folder = launch.linked_libraries(tmp_path / "libs", launch.BUNDLED + launch.AWS_CLIENT, with_transport=True)
    names = {p.name for p in folder.iterdir()}
    assert {"boto3", "botocore", "awslambdaric", "simplejson", "runtime_client.py"} <= names
    assert (folder / "runtime_client.py").resolve() == launch.HERE / "runtime_client.py"
    launch.linked_libraries(tmp_path / "libs", launch.BUNDLED, with_transport=True)  # again: nothing breaks
    assert {p.name for p in folder.iterdir()} == names
