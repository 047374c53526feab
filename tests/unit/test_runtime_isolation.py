"""What a function process may reach: the caller's home hidden whole where nothing a function needs lives in it,
else its secret places; orderflow's state folder; said in one line where the system cannot hide anything."""

from __future__ import annotations

from pathlib import Path

from orderflow.local.runtime.environment import isolation


def test_a_home_holding_nothing_functions_need_is_hidden_whole(tmp_path, monkeypatch):
    home, state = tmp_path / "home", tmp_path / "state"
    (home / ".aws").mkdir(parents=True)
    state.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("ORDERFLOW_HOME", str(state))
    assert isolation.private_directories((tmp_path / "python", tmp_path / "code")) == (home, state)


def test_a_home_holding_the_python_that_runs_functions_has_its_secret_places_hidden(tmp_path, monkeypatch):
    home = tmp_path / "home"
    for place in (".aws", ".ssh", "project/.venv"):
        (home / place).mkdir(parents=True)
    (home / ".netrc").write_text("machine x password y")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("ORDERFLOW_HOME", str(tmp_path / "no-state-yet"))
    hidden = isolation.private_directories((home / "project" / ".venv",))
    assert hidden == (home / ".aws", home / ".ssh", home / ".netrc")


def test_without_unshare_functions_run_with_a_scrubbed_environment_and_it_is_said(monkeypatch, caplog):
    monkeypatch.setattr(isolation.shutil, "which", lambda name: None)
    isolation.isolation.cache_clear()
    try:
        found = isolation.isolation(Path("/nowhere"))
    finally:
        isolation.isolation.cache_clear()
    assert found.command(["python", "x"]) == ["python", "x"]
    assert "there is no `unshare` on this system" in found.describe()
    assert "scrubbed environment only" in caplog.text
