"""Reversible patches on a library's classes: applied when an embedded AWS starts, undone when the last one stops,
so a plain `mock_aws` test after an embedded one sees the library as it is (after LocalStack's `Patch`/`Patches`)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

_ABSENT = object()


@dataclass
class Patch:
    """`owner.attribute = replacement`, remembering what was there (or that nothing was) to put it back."""

    owner: type
    attribute: str
    replacement: Any
    _original: Any = field(default=_ABSENT, init=False, repr=False)

    def apply(self) -> None:
        self._original = self.owner.__dict__.get(self.attribute, _ABSENT)
        setattr(self.owner, self.attribute, self.replacement)

    def undo(self) -> None:
        if self._original is _ABSENT:
            delattr(self.owner, self.attribute)
        else:
            setattr(self.owner, self.attribute, self._original)
        self._original = _ABSENT


@dataclass
class PatchSet:
    """One feature's patches, built by `build` from the library as it is when applied (so a wrapper wraps the
    library's own function, never a leftover patch), applied together and undone in reverse."""

    name: str
    build: Callable[[], list[Patch]]
    _applied: list[Patch] = field(default_factory=list, init=False, repr=False)

    def apply(self) -> None:
        for patch in self.build():
            patch.apply()
            self._applied.append(patch)

    def undo(self) -> None:
        while self._applied:
            self._applied.pop().undo()


class Patches:
    """Patch sets shared by every embedded AWS of the process: the first `active()` applies them, the last one to
    leave undoes them (embedded AWSes may run side by side, as the benchmarks' do)."""

    def __init__(
        self,
        sets: Callable[[], list[PatchSet]],
        check: Callable[[], None],
        forget: Callable[[], None] = lambda: None,
    ) -> None:
        self._sets_factory = sets
        self._check = check
        # Called once the patches are undone: nothing the embedded AWSes left in the patches' state outlives them.
        self._forget = forget
        self._sets: list[PatchSet] = []
        self._users = 0
        self._lock = threading.Lock()

    @property
    def applied(self) -> bool:
        return self._users > 0

    @contextmanager
    def active(self) -> Iterator[None]:
        self.enter()
        try:
            yield
        finally:
            self.leave()

    def enter(self) -> None:
        with self._lock:
            if self._users == 0:
                self._check()
                self._sets = self._sets_factory()
                try:
                    for patch_set in self._sets:
                        patch_set.apply()
                except BaseException:
                    self._undo()
                    raise
            self._users += 1

    def leave(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users == 0:
                self._undo()

    def _undo(self) -> None:
        for patch_set in reversed(self._sets):
            patch_set.undo()
        self._sets = []
        self._forget()
