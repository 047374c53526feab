"""Errors a user can act on. The CLI prints their message on one line and exits non-zero, never a traceback."""

from __future__ import annotations


class OrderflowError(Exception):
    """An error whose message is a complete, actionable sentence for the user."""

    exit_code = 1


class ConfigError(OrderflowError):
    """A setting or argument that cannot work (exit 2: usage error)."""

    exit_code = 2


class ForeignResourceError(OrderflowError):
    """A resource with our name exists but does not carry this stack's tag: we never adopt or touch it."""

    def __init__(self, kind: str, name: str, stack: str, owner: str | None = None) -> None:
        self.kind, self.name, self.owner = kind, name, owner
        whose = f"stack {owner!r}" if owner else "no orderflow stack (it was created outside orderflow)"
        super().__init__(
            f"{kind} {name!r} already exists and belongs to {whose}, not to stack {stack!r}; "
            "orderflow will not adopt or change it. Delete or rename it, or use another --stack"
        )
