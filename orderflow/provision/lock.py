"""One writer per stack on this machine: `up` and `down` hold a lock on the stack while they change it.

A file lock (`flock`) in the state folder, one per stack and place (endpoint, account, region): the operating system
releases it whenever its holder exits, however it exits (a killed `up` never leaves a stale lock). The file says who
holds it, so a second `up` or `down` waits with a line naming the holder, or fails at once with `--no-wait`.
Across machines no lock can be shared; there every create is race-safe instead (`provision/waits.py`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from orderflow.errors import Conflict, FileProblem
from orderflow.paths import private_dir, state_dir
from orderflow.provision.base import Context

POLL_SECONDS = 0.2


def lock_path(ctx: Context) -> Path:
    """The stack's lock file: one per stack, endpoint, account and region."""
    place = json.dumps([ctx.aws.endpoint_url, ctx.arns.account, ctx.aws.region, ctx.config.record_name])
    digest = hashlib.sha256(place.encode()).hexdigest()[:16]
    return state_dir() / "locks" / f"{ctx.config.name}-{digest}.lock"


def _holder(path: Path) -> str:
    try:
        holder = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return "another orderflow"
    if not holder:
        return "another orderflow"
    started = time.strftime("%H:%M:%S", time.localtime(holder.get("since", 0)))
    return f"`orderflow {holder.get('command', '?')}` (pid {holder.get('pid', '?')}, since {started})"


@contextlib.contextmanager
def stack_lock(
    ctx: Context,
    command: str,
    wait: bool = True,
    on_wait: Callable[[str], None] = lambda line: None,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[None]:
    """Hold the stack's lock for the block. Taken: wait (telling `on_wait` once, naming the holder), or raise
    Conflict at once when `wait` is False."""
    path = lock_path(ctx)
    private_dir(path.parent)
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as e:
        raise FileProblem(f"Cannot open the stack's lock {path}: {e.strerror} (see ORDERFLOW_HOME)") from e
    try:
        told = False
        while True:
            try:
                fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                holder = _holder(path)
                if not wait:
                    raise Conflict(
                        f"stack {ctx.config.name!r} is being changed by {holder}; run again when it is done "
                        "(without --no-wait, orderflow waits for it)"
                    ) from None
                if not told:
                    on_wait(f"waiting for {holder} to finish with stack {ctx.config.name!r} …")
                    told = True
                sleep(POLL_SECONDS)
        os.ftruncate(descriptor, 0)
        os.pwrite(descriptor, json.dumps({"pid": os.getpid(), "command": command, "since": time.time()}).encode(), 0)
        try:
            yield
        finally:
            os.ftruncate(descriptor, 0)  # released: the next holder writes its own name
    finally:
        os.close(descriptor)  # closing releases the flock
