"""The per-user state directory (embedded AWS pid and log files, the last publish of each stack)."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    root = os.environ.get("ORDERFLOW_HOME")
    if root:
        return Path(root)
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "orderflow"
