"""The per-user state directory (embedded AWS pid and log files, the last publish of each stack).

Private to its user: the directory is made 0700 and every file in it 0600, since the log can hold request details.
"""

from __future__ import annotations

import os
from pathlib import Path

from orderflow.errors import FileProblem


def state_dir() -> Path:
    root = os.environ.get("ORDERFLOW_HOME")
    if root:
        return Path(root)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "orderflow"


def private_dir(path: Path) -> Path:
    """Make `path` (and its parents) as a directory only its user may read, or explain in one line why not."""
    try:
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        if path.stat().st_mode & 0o077:
            path.chmod(0o700)
    except OSError as e:
        raise FileProblem(f"Cannot use {path} as orderflow's state directory: {e.strerror} (see ORDERFLOW_HOME)") from e
    return path


def write_private(path: Path, text: str, durable: bool = False) -> None:
    """Write a state file that only its user may read (0600), atomically: readers never see half a file. `durable`
    flushes it to disk before it replaces the old one (a record that must survive a crash). One line if it cannot."""
    private_dir(path.parent)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as e:
        raise FileProblem(f"Cannot write {path}: {e.strerror} (see ORDERFLOW_HOME)") from e


def open_private_append(path: Path):  # type: ignore[no-untyped-def]
    """A log file opened for appending, created 0600."""
    private_dir(path.parent)
    return os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
