"""What a function process can reach of the caller's machine.

A function runs as the caller's own user, so its environment is scrubbed (no inherited variable, a `HOME` of its
own, `AWS_CONFIG_FILE` and `AWS_SHARED_CREDENTIALS_FILE` pointing at nothing: `worker.function_environment`). Files
are another matter: by absolute path a function could still open `~/.aws/credentials`. Where the kernel lets an
unprivileged user make a user and a mount namespace (Linux, `unshare` from util-linux), each function process runs
in one where the caller's home directory and orderflow's state folder are hidden under an empty tmpfs. Where it
cannot (macOS, a kernel or container that forbids it), the runtime says so once, in one line, and runs without.
"""

from __future__ import annotations

import functools
import logging
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("orderflow.local.runtime")

# Over each path given before `--`: an empty tmpfs on a directory, /dev/null on a file; then become the command.
_HIDE = (
    'while [ "$1" != "--" ]; do if [ -d "$1" ]; then mount -t tmpfs -o size=64k,mode=0700 orderflow-hidden "$1"; '
    'else mount --bind /dev/null "$1"; fi || exit 97; shift; done; shift; exec "$@"'
)


@dataclass(frozen=True)
class Isolation:
    """How function processes are started: the command prefix that hides `hidden`, or none and why not."""

    prefix: tuple[str, ...] = ()
    hidden: tuple[str, ...] = ()
    unavailable: str | None = None

    def command(self, argv: list[str]) -> list[str]:
        return [*self.prefix, *self.hidden, "--", *argv] if self.prefix else argv

    def describe(self) -> str:
        if self.prefix:
            return f"function processes cannot see {', '.join(self.hidden)} (a mount namespace hides them)"
        return f"function processes run with a scrubbed environment only: {self.unavailable}"


# Where a home directory cannot be hidden whole (the Python that runs functions lives in it, a virtual environment in
# a project folder say), these parts of it are: where credentials and keys are kept.
SECRET_PLACES = (
    ".aws",
    ".ssh",
    ".gnupg",
    ".config",
    ".docker",
    ".kube",
    ".azure",
    ".local/state/orderflow",
    ".netrc",
    ".npmrc",
    ".pypirc",
    ".git-credentials",
    ".boto",
    ".s3cfg",
)


def private_directories(needed: tuple[Path, ...]) -> tuple[Path, ...]:
    """What a function must not read: the caller's home and orderflow's state folder (logs, journals) — or, where
    one holds what functions need (`needed`: the Python running them, the deployed code), the secret places in it."""
    from orderflow.paths import state_dir

    hide: list[Path] = []
    for directory in (Path(os.path.expanduser("~")), state_dir()):
        directory = directory.resolve()
        if not directory.is_dir():
            continue
        if not any(_contains(directory, n) for n in needed):
            hide.append(directory)
            continue
        parts = (directory / place for place in SECRET_PLACES)
        hide += [p.resolve() for p in parts if p.exists() and not any(_contains(p.resolve(), n) for n in needed)]
    return tuple(dict.fromkeys(hide))


def needed_by_functions(code_root: Path, needs: tuple[str, ...] = ()) -> tuple[Path, ...]:
    """What a function process must see: the interpreter and its libraries (boto3 for the handler), the runtime
    client, the deployed code, and what its launch names (`needs`: another Python, the libraries linked for it)."""
    import sys

    here = Path(__file__).resolve().parent
    return tuple(Path(p).resolve() for p in {sys.prefix, sys.base_prefix, str(here), str(code_root), *needs})


@functools.lru_cache(maxsize=16)
def isolation(code_root: Path, needs: tuple[str, ...] = ()) -> Isolation:
    """Probe once (per folder the deployed code is unpacked in) whether function processes can run with the
    private directories hidden."""
    unshare = shutil.which("unshare")
    if unshare is None:
        return _without("there is no `unshare` on this system (Linux's util-linux has it; macOS has none)")
    hidden = tuple(str(p) for p in private_directories(needed_by_functions(code_root, needs)))
    if not hidden:
        return _without("every private directory holds what functions need (the Python running them)")
    for mapping in ("--map-current-user", "--map-root-user"):
        prefix = (unshare, "--user", mapping, "--mount", "--", "sh", "-c", _HIDE, "orderflow-function")
        candidate = Isolation(prefix, hidden)
        probe = _probe(candidate, hidden)
        if probe is None:
            log.info("isolation: %s", candidate.describe())
            return candidate
    return _without(f"this kernel does not let an unprivileged user hide directories ({probe})")


def _probe(candidate: Isolation, hidden: tuple[str, ...]) -> str | None:
    """None when a process started this way sees the hidden directories empty (and files: /dev/null); else what
    went wrong."""
    dirs = [h for h in hidden if Path(h).is_dir()]
    with tempfile.TemporaryDirectory() as scratch:
        try:
            result = subprocess.run(
                candidate.command(["sh", "-c", 'for d; do [ -z "$(ls -A "$d")" ] || exit 3; done', "probe", *dirs]),
                capture_output=True,
                text=True,
                timeout=10,
                cwd=scratch,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.SubprocessError) as e:
            return str(e)
    if result.returncode == 0:
        return None
    return (result.stderr.strip().splitlines() or [f"exit {result.returncode}"])[-1]


def _contains(directory: Path, path: Path) -> bool:
    try:
        path.resolve().relative_to(directory)
        return True
    except ValueError:
        return False


def _without(reason: str) -> Isolation:
    isolated = Isolation(unavailable=reason)
    log.warning("isolation: %s", isolated.describe())
    return isolated
