"""Errors a user can act on. The CLI prints their message on one line and exits non-zero, never a traceback; a
`--json` error document carries the class's stable `code` (the list is in the README: scripts may rely on it)."""

from __future__ import annotations


class OrderflowError(Exception):
    """An error whose message is a complete, actionable sentence for the user."""

    exit_code = 1
    code = "failed"


class ConfigError(OrderflowError):
    """A setting or argument that cannot work (exit 2: usage error)."""

    exit_code = 2
    code = "usage"


class NotFoundError(OrderflowError):
    """What the command needs does not exist (a stack not up, a queue deleted, an order never published)."""

    code = "not-found"


class AccessDeniedError(OrderflowError):
    """AWS refused the caller's credentials the permission."""

    code = "access-denied"


class CredentialsError(OrderflowError):
    """No credentials, an unknown profile, or credentials AWS rejects."""

    code = "credentials"


class NotConfigured(OrderflowError):
    """No AWS region is configured where one is needed."""

    code = "not-configured"


class EndpointError(OrderflowError):
    """The endpoint cannot be reached, or the embedded AWS cannot listen or run."""

    code = "endpoint"


class NotRunningError(EndpointError):
    """No embedded AWS is running (or the one recorded is not answering)."""

    code = "not-running"


class PortInUse(EndpointError):
    """The port the embedded AWS should listen on is taken."""

    code = "port-in-use"


class BadInput(OrderflowError):
    """An order, an order file or a value given to a command cannot be used as it is."""

    code = "bad-input"
    exit_code = 2  # what the user gave the command: a usage error, like a bad flag


class FileProblem(OrderflowError):
    """A file or folder orderflow reads or writes (its state folder, an export, the publish journal) is unusable."""

    code = "file"


class Conflict(OrderflowError):
    """What exists conflicts with what was asked (a task already running, a table keyed otherwise)."""

    code = "conflict"


class NeedsConfirmation(OrderflowError):
    """Deleting data needs a yes: given interactively or with --yes."""

    code = "needs-confirmation"


class TimedOut(OrderflowError):
    """A bounded wait on AWS ended before the state it waited for."""

    code = "timeout"


class AwsError(OrderflowError):
    """AWS answered with an error orderflow has no more specific word for (its code is in the message)."""

    code = "aws"


class ForeignResourceError(OrderflowError):
    """A resource with our name exists but does not carry this stack's tag: we never adopt or touch it."""

    code = "foreign"

    def __init__(self, kind: str, name: str, stack: str, owner: str | None = None) -> None:
        self.kind, self.name, self.owner = kind, name, owner
        whose = f"stack {owner!r}" if owner else "no orderflow stack (it was created outside orderflow)"
        super().__init__(
            f"{kind} {name!r} already exists and belongs to {whose}, not to stack {stack!r}; "
            "orderflow will not adopt or change it. Delete or rename it, or use another --stack"
        )


class ManagedElsewhere(OrderflowError):
    """The stack is managed by CloudFormation or another tool: orderflow proves it but never changes it."""

    code = "managed-elsewhere"

    def __init__(self, manager: str, command: str) -> None:
        super().__init__(
            f"Stack is managed by {manager}: change it there (`orderflow {command}` only acts on stacks "
            "it built; status, publish-test, verify, watch, trace, logs and dlq work on this one)"
        )


class OwnershipUnknownError(OrderflowError):
    """The tags that prove ownership cannot be read: acting either way could be wrong."""

    code = "ownership-unknown"


class Cancelled(Exception):
    """The run was interrupted (Ctrl-C): a step stops at its next wait. Not an OrderflowError: the CLI reports
    the interruption itself (exit 130)."""

    code = "interrupted"


# Every code a `--json` error document can carry, with what it means (the README's table is generated from this).
def _first_sentence(doc: str | None) -> str:
    text = " ".join((doc or "").split())
    return text.split(". ", 1)[0].rstrip(".") + "."


ERROR_CODES: dict[str, str] = {
    cls.code: _first_sentence(cls.__doc__)
    for cls in (
        ConfigError,
        NotFoundError,
        AccessDeniedError,
        CredentialsError,
        NotConfigured,
        EndpointError,
        NotRunningError,
        PortInUse,
        BadInput,
        FileProblem,
        Conflict,
        NeedsConfirmation,
        TimedOut,
        AwsError,
        ForeignResourceError,
        ManagedElsewhere,
        OwnershipUnknownError,
        OrderflowError,
        Cancelled,
    )
}
ERROR_CODES["failed"] = "Any other failure: the message says what failed and what to do."
# Failures that are results, not exceptions: the document says what failed.
ERROR_CODES["check-failed"] = "A hop or check did not pass (verify, demo): the document's checks say which."
