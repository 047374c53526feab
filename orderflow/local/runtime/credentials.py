"""Execution-role credentials, obtained as Lambda obtains them: lambda.amazonaws.com assumes the function's role
(the role's trust policy must allow it), in a session named after the function.

Every AWS call made for a function — its own code's, its poller's, its log delivery — is signed with these
credentials, so the embedded AWS's enforcement holds each of them to the role's policies.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Lambda refreshes an execution environment's credentials well before they expire; so do we.
RENEW_AFTER_SECONDS = 15 * 60
ROLE_NOT_ASSUMABLE = "The role defined for the function cannot be assumed by Lambda."


class RoleNotAssumable(Exception):
    """The role's trust policy does not let lambda.amazonaws.com assume it (or the role is gone)."""

    def __init__(self, role_arn: str) -> None:
        super().__init__(ROLE_NOT_ASSUMABLE)
        self.role_arn = role_arn


@dataclass(frozen=True)
class RoleCredentials:
    access_key_id: str
    secret_access_key: str
    session_token: str

    def environment(self) -> dict[str, str]:
        """The variables Lambda sets in a function's environment."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret_access_key,
            "AWS_SESSION_TOKEN": self.session_token,
        }

    def client_arguments(self) -> dict[str, str]:
        return {
            "aws_access_key_id": self.access_key_id,
            "aws_secret_access_key": self.secret_access_key,
            "aws_session_token": self.session_token,
        }


class ExecutionRoles:
    """Credentials per (role, session), reused while the role stays assumable; renewed every 15 minutes."""

    def __init__(self, sts_client: Callable[[str], Any], lambda_may_assume: Callable[[str], bool]) -> None:
        self._sts = sts_client
        self._may_assume = lambda_may_assume
        self._cache: dict[tuple[str, str], tuple[float, RoleCredentials]] = {}
        self._lock = threading.Lock()

    def credentials(self, role_arn: str, session_name: str, region: str) -> RoleCredentials:
        # The trust policy is read on every call (in-process, cheap): a trust policy changed by hand takes effect
        # at the next invocation, as a refused AssumeRole would on AWS.
        if not self._may_assume(role_arn):
            raise RoleNotAssumable(role_arn)
        key = (role_arn, session_name)
        with self._lock:
            cached = self._cache.get(key)
            if cached and time.monotonic() - cached[0] < RENEW_AFTER_SECONDS:
                return cached[1]
        issued = self._sts(region).assume_role(RoleArn=role_arn, RoleSessionName=session_name)["Credentials"]
        credentials = RoleCredentials(issued["AccessKeyId"], issued["SecretAccessKey"], issued["SessionToken"])
        with self._lock:
            self._cache[key] = (time.monotonic(), credentials)
        return credentials
