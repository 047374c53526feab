"""Which Python runs a function: the one its runtime names (`python3.12` for Runtime python3.12) where this machine has
it — on PATH, under pyenv, or installed by uv — else the embedded AWS's own Python, which then stands in (said once).
"""

from __future__ import annotations

import functools
import glob
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("orderflow.local.runtime")

_PROBE = (
    "import json, sys; print(json.dumps([list(sys.version_info[:3]), sys.executable, sys.prefix, sys.base_prefix]))"
)


@dataclass(frozen=True)
class Interpreter:
    runtime: str  # the Lambda runtime it serves, e.g. python3.12
    executable: str
    version: str  # e.g. 3.12.1
    prefixes: tuple[str, ...]  # what a function process must see of it (isolation hides the rest of a home)

    @property
    def is_ours(self) -> bool:
        """The Python running the embedded AWS itself (its packages, awslambdaric included, are importable)."""
        return Path(self.executable).resolve() == Path(sys.executable).resolve()

    @property
    def stands_in(self) -> bool:
        """Not the version the runtime names."""
        return not self.version.startswith(self.runtime.removeprefix("python") + ".")

    def stand_in_warning(self) -> str:
        return (
            f"no {self.runtime} on this machine (PATH, pyenv, uv): the embedded AWS runs the function on Python "
            f"{self.version} instead; install {self.runtime} to run it on the version AWS runs"
        )


def _ours(runtime: str) -> Interpreter:
    return Interpreter(
        runtime,
        sys.executable,
        ".".join(map(str, sys.version_info[:3])),
        tuple(dict.fromkeys((sys.prefix, sys.base_prefix))),
    )


def candidates(version: str) -> list[str]:
    """Where a `python<version>` may be: PATH (a pyenv shim is resolved by running it), pyenv's and uv's folders."""
    found = [shutil.which(f"python{version}") or ""]
    pyenv_root = os.environ.get("PYENV_ROOT") or os.path.expanduser("~/.pyenv")
    found += sorted(glob.glob(f"{pyenv_root}/versions/{version}.*/bin/python{version}"), reverse=True)
    uv_root = os.environ.get("UV_PYTHON_INSTALL_DIR") or os.path.expanduser("~/.local/share/uv/python")
    found += sorted(glob.glob(f"{uv_root}/cpython-{version}.*/bin/python{version}"), reverse=True)
    return [c for c in dict.fromkeys(found) if c]


def _probe(executable: str, runtime: str) -> Interpreter | None:
    """The interpreter behind `executable` (a shim runs the real one, whose own path is what it reports)."""
    try:
        result = subprocess.run(
            [executable, "-c", _PROBE], capture_output=True, text=True, timeout=20, stdin=subprocess.DEVNULL
        )
        version, real, prefix, base = json.loads(result.stdout)
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    return Interpreter(runtime, real, ".".join(map(str, version)), tuple(dict.fromkeys((prefix, base))))


def bundled_minimum() -> tuple[int, int]:
    """The oldest Python the boto3 (botocore) given to functions runs on, from its own Requires-Python."""
    from importlib.metadata import PackageNotFoundError, metadata

    try:
        requires = metadata("botocore").get("Requires-Python") or ""
    except PackageNotFoundError:
        return (3, 0)
    found = re.search(r">=\s*(\d+)\.(\d+)", requires)
    return (int(found.group(1)), int(found.group(2))) if found else (3, 0)


def too_old_for_bundled(runtime: str) -> str | None:
    """Why a runtime's own Python cannot run the boto3 the embedded runtime bundles (AWS bundles an older boto3 in
    an old runtime; here there is one boto3 for all), or None when it can."""
    wanted = re.fullmatch(r"python(\d+)\.(\d+)", runtime)
    minimum = bundled_minimum()
    if wanted is None or (int(wanted.group(1)), int(wanted.group(2))) >= minimum:
        return None
    return f"the boto3 the embedded AWS gives functions needs Python {minimum[0]}.{minimum[1]} or newer"


@functools.lru_cache(maxsize=16)
def find(runtime: str) -> Interpreter:
    """The Python for a Lambda runtime (`python3.X`); this process's own when it is that version or none is found,
    or when that version cannot run the bundled boto3 (said once)."""
    ours = _ours(runtime)
    if not runtime.startswith("python") or not ours.stands_in:
        return ours
    too_old = too_old_for_bundled(runtime)
    if too_old:
        log.warning(
            "%s functions run on Python %s on the embedded AWS: %s (on AWS, %s runs with its own older boto3)",
            runtime, ours.version, too_old, runtime,
        )  # fmt: skip
        return ours
    for candidate in candidates(runtime.removeprefix("python")):
        found = _probe(candidate, runtime)
        if found is not None and not found.stands_in:
            return found
    log.warning("%s", ours.stand_in_warning())
    return ours
