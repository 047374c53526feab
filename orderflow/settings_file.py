"""Settings that persist: `orderflow.toml` in the working directory (or `--config FILE`), one table per stack.

    [stacks.default]
    function_timeout = 5

Flags and ORDERFLOW_* variables override the file; the file overrides the defaults. Each value is validated by the
same rule as its flag (stack.setting_problem), in one line naming the file, the key and the rule. Pure apart from
reading the file: resolving where each setting came from is data the CLI renders.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orderflow.errors import ConfigError
from orderflow.stack import REQUIRED_RESOURCE_KEYS, RESOURCE_KEYS, StackSettings, setting_problem, user_settings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_FILE = "orderflow.toml"
DEFAULT_SOURCE = "default"


@dataclass(frozen=True)
class SettingsFile:
    path: Path
    stack: str
    values: dict[str, Any] = field(default_factory=dict)
    # [stacks.<name>.resources]: the names of a stack orderflow did not build (Terraform, by hand), key -> name
    resources: dict[str, str] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.shown} [stacks.{self.stack}]"

    @property
    def shown(self) -> str:
        """The file as the user finds it: `../../orderflow.toml` when found above the working directory, else its
        name."""
        cwd = Path.cwd().resolve()
        folder = self.path.resolve().parent
        return os.path.relpath(self.path.resolve(), cwd) if folder in (cwd, *cwd.parents) else self.path.name


def find(cwd: Path) -> Path | None:
    """orderflow.toml in `cwd` or the nearest folder above it (as pyproject.toml is found), or None."""
    for folder in (cwd, *cwd.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
    return None


def load(stack: str, path: Path | None = None, cwd: Path | None = None, label: str = "--config") -> SettingsFile | None:
    """The stack's table of the settings file: `path` if given (it must exist; `label` says where it was given),
    else orderflow.toml in the working directory or the nearest folder above it, if any."""
    explicit = path is not None
    if explicit and str(path) in ("", "."):
        raise ConfigError(f"{label} is empty: give the settings file's name")
    if path is None:
        path = find((cwd or Path.cwd()).resolve())
        if path is None:
            return None
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"{path}: no such settings file ({label})") from None
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: cannot be read as a settings file ({e})") from None
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    unknown = set(document) - {"stacks"}
    if unknown:
        raise ConfigError(f"{path}: unknown table {sorted(unknown)[0]!r}; settings go in [stacks.<stack name>]")
    stacks = document.get("stacks", {})
    table = stacks.get(stack, {}) if isinstance(stacks, dict) else None
    if not isinstance(table, dict):
        raise ConfigError(f"{path}: [stacks.{stack}] must be a table of settings")
    known = {setting.name: setting for setting in user_settings()}
    table = dict(table)
    resources = _resources(path, stack, table.pop("resources", None))
    for key, value in table.items():
        if key not in known:
            raise ConfigError(f"{path}: [stacks.{stack}] {key}: unknown setting; known settings: {', '.join(known)}")
        problem = setting_problem(known[key], value)
        if problem:
            raise ConfigError(f"{path}: [stacks.{stack}] {key} = {value!r}: {problem}")
    return SettingsFile(path, stack, table, resources)


def _resources(path: Path, stack: str, table: Any) -> dict[str, str]:
    """[stacks.<stack>.resources], checked: known keys, names as strings, the pipeline's hops all named."""
    if table is None:
        return {}
    where = f"{path}: [stacks.{stack}.resources]"
    if not isinstance(table, dict):
        raise ConfigError(f"{where} must be a table of resource names")
    for key, value in table.items():
        if key not in RESOURCE_KEYS:
            raise ConfigError(f"{where} {key}: unknown resource; known: {', '.join(RESOURCE_KEYS)}")
        if not isinstance(value, str) or not value.strip() or value != value.strip():
            raise ConfigError(f"{where} {key} = {value!r}: must be the resource's name")
    missing = [key for key in REQUIRED_RESOURCE_KEYS if key not in table]
    if missing:
        raise ConfigError(
            f"{where}: names no {', '.join(missing)}; a pipeline needs {', '.join(REQUIRED_RESOURCE_KEYS)}"
        )
    return dict(table)


@dataclass(frozen=True)
class Resolved:
    """The settings `up` will converge to, and where each came from: a flag, a variable, the file, or the default."""

    settings: StackSettings
    sources: dict[str, str]
    file: SettingsFile | None = None  # the settings file read, if any

    def chosen(self) -> dict[str, tuple[Any, str]]:
        """The settings someone chose (not left at their default): name -> (value, source)."""
        return {
            name: (getattr(self.settings, name), source)
            for name, source in self.sources.items()
            if source != DEFAULT_SOURCE
        }

    def to_document(self) -> dict[str, dict[str, Any]]:
        return {name: {"value": getattr(self.settings, name), "source": s} for name, s in self.sources.items()}

    def validate(self) -> list[str]:
        """The settings' own check (warnings, or ConfigError), naming the settings file when a value in the conflict
        may come from it: the flags the message names are not the only place to change."""
        try:
            return self.settings.validate()
        except ConfigError as e:
            from_file = [f"{n} = {getattr(self.settings, n)!r}" for n, s in self.sources.items() if self.file and
                         s == self.file.label]  # fmt: skip
            if not from_file:
                raise
            assert self.file is not None
            raise ConfigError(f"{e} (set in {self.file.label}: {', '.join(from_file)})") from None


def resolve(given: dict[str, tuple[Any, str]], file: SettingsFile | None) -> Resolved:
    """`given`: the settings set on the command line or by variable, name -> (value, source label)."""
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for setting in user_settings():
        if setting.name in given:
            values[setting.name], sources[setting.name] = given[setting.name]
        elif file is not None and setting.name in file.values:
            values[setting.name], sources[setting.name] = file.values[setting.name], file.label
        else:
            sources[setting.name] = DEFAULT_SOURCE
    return Resolved(StackSettings(**values), sources, file)
