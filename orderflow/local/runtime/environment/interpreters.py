"""Which Python runs a function: the one its runtime names (`python3.12` for Runtime python3.12) where this machine has
it — on PATH, under pyenv, or installed by uv — else the embedded AWS's own Python, which then stands in (said once).
"""

from __future__ import annotations

import functools
import glob
import json
import logging
import os
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


@functools.lru_cache(maxsize=16)
def find(runtime: str) -> Interpreter:
    """The Python for a Lambda runtime (`python3.X`); this process's own when it is that version or none is found."""
    ours = _ours(runtime)
    if not runtime.startswith("python") or not ours.stands_in:
        return ours
    for candidate in candidates(runtime.removeprefix("python")):
        found = _probe(candidate, runtime)
        if found is not None and not found.stands_in:
            return found
    log.warning("%s", ours.stand_in_warning())
    return ours
