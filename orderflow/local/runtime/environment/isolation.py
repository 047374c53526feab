"""What a function process can reach of the caller's machine: only the view `fence.py` builds for it.

A function runs as the caller's own user, so its environment is scrubbed (no inherited variable, a `HOME` of its
own, `AWS_CONFIG_FILE` and `AWS_SHARED_CREDENTIALS_FILE` pointing at nothing: `worker.function_environment`). Where
the kernel lets this user make user, mount and PID namespaces (Linux, `unshare` from util-linux), each function
process starts in new ones, in a filesystem built for it — the system's programs and libraries, the Python running
it, the runtime client and its deployed code, all read-only, and a private `/tmp` — with every capability dropped
(fence.py says how). It cannot see the caller's home, orderflow's state folder or the project tree, cannot write
outside its `/tmp`, cannot signal the daemon, and its processes end with its environment. Where the system cannot
do this (macOS, a kernel or container that forbids user namespaces), the runtime says so once, in one line, and runs
functions with the scrubbed environment only.
"""

from __future__ import annotations

import functools
import json
import logging
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("orderflow.local.runtime")

FENCE = Path(__file__).resolve().with_name("fence.py")
# Lambda's default ephemeral storage (/tmp): 512 MB.
EPHEMERAL_MB = 512
FENCE_FAILED = 97  # fence.py's exit status when it could not build the view


@dataclass(frozen=True)
class Isolation:
    """How function processes are started: inside the fence (a command prefix and what they may read), or without
    one and why not."""

    prefix: tuple[str, ...] = ()
    readable: tuple[str, ...] = ()
    unavailable: str | None = None

    def command(self, argv: list[str], code_dir: Path | None = None, tmp_mb: int = EPHEMERAL_MB) -> list[str]:
        if not self.prefix:
            return argv
        readable = [*self.readable, *([str(code_dir)] if code_dir else [])]
        spec = {"readonly": readable, "tmp_mb": tmp_mb, "cwd": str(code_dir) if code_dir else "/tmp"}
        return [*self.prefix, json.dumps(spec), "--", *argv]

    @property
    def fenced(self) -> bool:
        return bool(self.prefix)

    def describe(self) -> str:
        if self.prefix:
            return (
                "function processes run fenced: their own filesystem view (the runtime and their code read-only, a "
                "private /tmp), no capabilities, their own PID namespace"
            )
        return f"function processes run with a scrubbed environment only: {self.unavailable}"


def readable_by_functions(needs: tuple[str, ...] = ()) -> tuple[str, ...]:
    """What a function process must read besides the system: the embedded AWS's Python (boto3 for the handler,
    awslambdaric), the runtime client beside this file, and what its launch names (another Python, the libraries
    linked for it)."""
    here = Path(__file__).resolve().parent
    return tuple(dict.fromkeys(str(Path(p).resolve()) for p in (sys.prefix, sys.base_prefix, str(here), *needs)))


@functools.lru_cache(maxsize=16)
def isolation(needs: tuple[str, ...] = ()) -> Isolation:
    """Probe once (per set of readable folders) whether function processes can be started fenced."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return _without("there is no `unshare` on this system (Linux's util-linux has it; macOS has none)")
    prefix = (
        unshare, "--user", "--map-root-user", "--mount", "--pid", "--fork", "--kill-child", "--",
        sys.executable, "-I", "-S", str(FENCE),
    )  # fmt: skip
    candidate = Isolation(prefix, readable_by_functions(needs))
    problem = _probe(candidate)
    if problem is not None:
        return _without(f"this system does not let this user fence function processes ({problem})")
    log.info("isolation: %s", candidate.describe())
    return candidate


# Inside the fence: no capability left, the state folder and the caller's home absent, nothing writable but /tmp.
_CHECK = (
    'grep -q "^CapEff:[[:space:]]*0*$" /proc/self/status || exit 3; [ ! -e "$1" ] || exit 4; '
    'touch /tmp/probe || exit 5; ! touch "$2/probe" 2>/dev/null || exit 6'
)


def _probe(candidate: Isolation) -> str | None:
    """None when a process started this way is fenced as it should be; else what went wrong."""
    from orderflow.paths import state_dir

    with tempfile.TemporaryDirectory() as scratch:
        try:
            result = subprocess.run(
                candidate.command(["/bin/sh", "-c", _CHECK, "probe", str(state_dir()), sys.prefix]),
                capture_output=True,
                text=True,
                timeout=20,
                cwd=scratch,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.SubprocessError) as e:
            return str(e)
    if result.returncode == 0:
        return None
    return (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]


def _without(reason: str) -> Isolation:
    isolated = Isolation(unavailable=reason)
    log.warning("isolation: %s", isolated.describe())
    return isolated
