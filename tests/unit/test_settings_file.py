"""Settings that persist (orderflow.toml): validated like the flags, overridden by them, and never silently undone."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from orderflow.cli import cli
from orderflow.errors import ConfigError
from orderflow.settings_file import DEFAULT_SOURCE, load, resolve

REGION = "eu-west-3"


def test_no_file_is_no_settings_but_a_named_file_must_exist(tmp_path):
    assert load("default", cwd=tmp_path) is None
    with pytest.raises(ConfigError, match="no such settings file"):
        load("default", path=tmp_path / "missing.toml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[stacks.default]\nfunction_timeout = 0\n",
            "[stacks.default] function_timeout = 0: must be an integer from 1 to 900",
        ),
        ('[stacks.default]\nruntime = "java21"\n', "runtime = 'java21': must be one of python3.9"),
        ('[stacks.default]\nfunction_timeout = "5"\n', "function_timeout = '5': must be an integer"),
        ("[stacks.default]\ntimeout = 5\n", "timeout: unknown setting; known settings: runtime, architecture"),
        ("[default]\nfunction_timeout = 5\n", "unknown table 'default'"),
        ("[stacks]\ndefault = 5\n", "[stacks.default] must be a table"),
        ("[stacks.default\n", "not valid TOML"),
    ],
)
def test_each_bad_value_is_one_line_naming_the_file_key_and_rule(tmp_path, text, message):
    (tmp_path / "orderflow.toml").write_text(text)
    with pytest.raises(ConfigError) as refused:
        load("default", cwd=tmp_path)
    assert message in str(refused.value) and "orderflow.toml" in str(refused.value)
    assert "\n" not in str(refused.value)


def test_flags_and_variables_override_the_file_which_overrides_the_defaults(tmp_path):
    (tmp_path / "orderflow.toml").write_text("[stacks.blue]\nfunction_timeout = 5\nmemory_size = 256\n")
    file = load("blue", cwd=tmp_path)
    resolved = resolve({"memory_size": (512, "--memory")}, file)
    assert (resolved.settings.function_timeout, resolved.settings.memory_size) == (5, 512)
    assert resolved.sources["function_timeout"] == "orderflow.toml [stacks.blue]"
    assert resolved.sources["memory_size"] == "--memory"
    assert resolved.sources["batch_size"] == DEFAULT_SOURCE
    assert load("green", cwd=tmp_path).values == {}  # another stack's table is not this one's


@pytest.fixture
def run(mocked, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ORDERFLOW_HOME", str(tmp_path / "home"))

    def invoke(*args: str, env: dict[str, str] | None = None):
        return CliRunner().invoke(cli, ["--region", REGION, *args], env=env, catch_exceptions=False)

    return invoke


def test_a_setting_in_the_file_persists_and_is_not_undone_silently(run, tmp_path):
    (tmp_path / "orderflow.toml").write_text("[stacks.default]\nfunction_timeout = 5\n")
    first = json.loads(run("--json", "up").stdout)
    assert first["settings"]["function_timeout"] == {"value": 5, "source": "orderflow.toml [stacks.default]"}
    human = run("up", "--dry-run")
    assert "settings: function_timeout 5 (from orderflow.toml [stacks.default])" in human.stdout
    again = json.loads(run("--json", "up").stdout)
    assert {r["outcome"] for r in again["results"]} == {"unchanged"}  # a plain up keeps the file's 5

    (tmp_path / "orderflow.toml").unlink()  # nobody asks for 5 any more
    plan = run("--json", "up", "--dry-run")
    assert json.loads(plan.stdout)["reverting"] == [{"setting": "function_timeout", "from": 5, "to": 3}]
    human = run("up", "--dry-run")
    assert "function_timeout goes back to its default 3 (the stack has 5" in human.stderr
    assert "--function-timeout 5" in human.stderr


def test_a_flag_or_variable_beats_the_file_and_says_so(run, tmp_path):
    (tmp_path / "orderflow.toml").write_text("[stacks.default]\nfunction_timeout = 5\n")
    by_flag = json.loads(run("--json", "up", "--dry-run", "--function-timeout", "4").stdout)
    assert by_flag["settings"]["function_timeout"] == {"value": 4, "source": "--function-timeout"}
    by_variable = json.loads(run("--json", "up", "--dry-run", env={"ORDERFLOW_FUNCTION_TIMEOUT": "4"}).stdout)
    assert by_variable["settings"]["function_timeout"] == {"value": 4, "source": "ORDERFLOW_FUNCTION_TIMEOUT"}


def test_a_bad_file_stops_up_in_one_line_with_exit_2(run, tmp_path):
    (tmp_path / "orderflow.toml").write_text("[stacks.default]\nmemory_size = 64\n")
    result = run("up", "--dry-run")
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        f"error: {tmp_path / 'orderflow.toml'}: [stacks.default] memory_size = 64: must be an integer from 128 to 10240"
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('[stacks.tf]\nresources = "x"\n', "[stacks.tf.resources] must be a table of resource names"),
        ('[stacks.tf.resources]\nbucket = "b"\n', "bucket: unknown resource; known: table, topic"),
        ('[stacks.tf.resources]\ntable = ""\n', "table = '': must be the resource's name"),
        ('[stacks.tf.resources]\ntable = " t"\n', "table = ' t': must be the resource's name"),
        ("[stacks.tf.resources]\ntable = 3\n", "table = 3: must be the resource's name"),
        ('[stacks.tf.resources]\ntable = "t"\ntopic = "s"\n', "names no queue, function; a pipeline needs"),
    ],
)
def test_the_resources_of_a_stack_orderflow_did_not_build_are_checked_in_one_line(tmp_path, text, message):
    path = tmp_path / "orderflow.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as refused:
        load("tf", path)
    assert message in str(refused.value) and str(path) in str(refused.value)


def test_named_resources_sit_beside_the_settings_of_the_same_stack(tmp_path):
    path = tmp_path / "orderflow.toml"
    path.write_text(
        '[stacks.tf]\nmemory_size = 256\n[stacks.tf.resources]\ntable = "t"\ntopic = "s"\nqueue = "q"\nfunction = "f"\n'
    )
    loaded = load("tf", path)
    assert loaded.values == {"memory_size": 256}
    assert loaded.resources == {"table": "t", "topic": "s", "queue": "q", "function": "f"}


def test_the_file_is_found_from_a_subfolder_as_pyproject_is_and_up_names_it(run, tmp_path, monkeypatch):
    (tmp_path / "orderflow.toml").write_text("[stacks.default]\nfunction_timeout = 5\n")
    (tmp_path / "src" / "deep").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "src" / "deep")
    human = run("up", "--dry-run")
    assert "settings file: ../../orderflow.toml [stacks.default]" in human.stdout
    assert "function_timeout 5 (from ../../orderflow.toml [stacks.default])" in human.stdout


def test_a_bad_value_is_blamed_on_where_it_was_set(run, tmp_path):
    by_variable = run("up", "--dry-run", env={"ORDERFLOW_FUNCTION_TIMEOUT": "abc"})
    assert by_variable.exit_code == 2
    assert "Invalid value for ORDERFLOW_FUNCTION_TIMEOUT (environment variable): 'abc'" in by_variable.stderr
    by_flag = run("up", "--dry-run", "--function-timeout", "abc", env={"ORDERFLOW_FUNCTION_TIMEOUT": "abc"})
    assert "Invalid value for '--function-timeout'" in by_flag.stderr
    missing = run("up", "--dry-run", env={"ORDERFLOW_CONFIG": str(tmp_path / "nope.toml")})
    assert missing.exit_code == 2 and "nope.toml: no such settings file (ORDERFLOW_CONFIG)" in missing.stderr
    empty = run("--config", "", "up", "--dry-run")
    assert empty.exit_code == 2 and "--config is empty: give the settings file's name" in empty.stderr


def test_a_conflict_between_settings_names_the_file_a_value_came_from(run, tmp_path):
    (tmp_path / "orderflow.toml").write_text("[stacks.default]\nfunction_timeout = 10\n")
    result = run("up", "--dry-run")
    assert result.exit_code == 2
    assert "Raise --visibility-timeout or lower --function-timeout" in result.stderr
    assert "(set in orderflow.toml [stacks.default]: function_timeout = 10)" in result.stderr
