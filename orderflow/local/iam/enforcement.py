"""The embedded AWS refuses what AWS refuses: a WSGI middleware in front of moto.

- Calls signed with a role session's keys (the functions' and the pollers' — see runtime/credentials.py) are
  allowed or refused by the role's policies, on the exact resource ARN worked out from the request, with the error
  code and message the service itself returns. Other keys stay unrestricted, as an administrator's would be.
- CreateEventSourceMapping / UpdateEventSourceMapping refuse what Lambda refuses (see `mapping_refusal`).
- Any IAM write invalidates the cached decisions, so a changed policy applies to the next call.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import urlparse

from orderflow.access import denial_message
from orderflow.local.iam.roles import RolePolicies
from orderflow.local.server.wire import (
    SignedRequest,
    credential_scope,
    error_response,
    is_read,
    operation_of,
    parse_request,
)

log = logging.getLogger("orderflow.local.enforcement")

# The code each service answers a refused call with (its API reference, "Common Errors").
_DENIAL_CODES = {
    "dynamodb": ("AccessDeniedException", 400),
    "logs": ("AccessDeniedException", 400),
    "lambda": ("AccessDeniedException", 403),
    "sqs": ("AccessDenied", 403),
    "sns": ("AuthorizationError", 403),
    "sts": ("AccessDenied", 403),
    "iam": ("AccessDenied", 403),
}
# Actions every identity may call whatever its policies say (STS API reference, GetCallerIdentity).
_ALWAYS_ALLOWED = {"sts:getcalleridentity"}
_MAPPINGS_PATH = re.compile(r"^/2015-03-31/event-source-mappings/?(?P<uuid>[^/]*)$")


def _partition(region: str) -> str:
    return "aws-cn" if region.startswith("cn-") else "aws-us-gov" if region.startswith("us-gov-") else "aws"


def resource_arn(request: SignedRequest, account: str) -> str:
    """The resource a call acts on, as IAM sees it (Service Authorization Reference); `*` where the action has
    no resource type (ListQueues, DescribeLogGroups, …)."""
    p, region, params = _partition(request.region), request.region, request.params
    if request.service == "dynamodb" and params.get("TableName"):
        return f"arn:{p}:dynamodb:{region}:{account}:table/{params['TableName']}"
    if request.service == "sqs":
        if params.get("QueueUrl"):
            owner, _, name = urlparse(str(params["QueueUrl"])).path.strip("/").partition("/")
            return f"arn:{p}:sqs:{region}:{owner}:{name}"
        if params.get("QueueName"):
            owner = params.get("QueueOwnerAWSAccountId") or account
            return f"arn:{p}:sqs:{region}:{owner}:{params['QueueName']}"
    if request.service == "logs" and params.get("logGroupName"):
        group = f"arn:{p}:logs:{region}:{account}:log-group:{params['logGroupName']}"
        return f"{group}:log-stream:{params['logStreamName']}" if params.get("logStreamName") else group
    if request.service == "sns" and params.get("TopicArn"):
        return str(params["TopicArn"])
    if request.service == "lambda":
        return f"arn:{p}:lambda:{region}:{account}:function:*"
    return "*"


# API operations authorised by another action's permission (SQS developer guide, "Amazon SQS API permissions":
# a batch call needs the permission of the single call).
_IAM_ACTIONS = {
    ("sqs", "DeleteMessageBatch"): "DeleteMessage",
    ("sqs", "SendMessageBatch"): "SendMessage",
    ("sqs", "ChangeMessageVisibilityBatch"): "ChangeMessageVisibility",
}


def iam_action(request: SignedRequest) -> str:
    """The IAM action a call needs. REST services name no operation on the wire: a role's call to one is checked
    as the service's every action (`lambda:*`)."""
    if " " in request.operation:
        return f"{request.service}:*"
    return f"{request.service}:{_IAM_ACTIONS.get((request.service, request.operation), request.operation)}"


class Enforcement:
    """WSGI middleware: role sessions are held to their policies; mapping creation follows Lambda's rules."""

    def __init__(
        self,
        app: Callable[..., Any],
        roles: RolePolicies,
        mapping_refusal: Callable[[str, str, dict[str, Any]], tuple[str, str] | None] | None = None,
        on_lambda_write: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.roles = roles
        self.mapping_refusal = mapping_refusal
        # Told after every Lambda write, so the runtime applies new code, configuration and mappings to the very
        # next invocation (as AWS does once an update is Successful) instead of at its next poll of the API.
        self.on_lambda_write = on_lambda_write

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        # Most calls are an administrator's: decide from the header alone and leave their bodies unread.
        scope = credential_scope(environ)
        if scope is None:
            return self.app(environ, start_response)
        access_key, _, service = scope
        writes_iam = service == "iam" and not is_read(operation_of(environ) or "Get")
        writes_lambda = service == "lambda" and environ.get("REQUEST_METHOD") in ("POST", "PUT", "DELETE")

        def forward() -> Any:
            response = self.app(environ, start_response)  # moto applies the change while answering
            # Only now is the change in place: forgetting earlier would let a concurrent call cache the old answer.
            if writes_iam:
                self.roles.invalidate()
            if writes_lambda and self.on_lambda_write is not None:
                self.on_lambda_write()
            return response

        if writes_lambda and self.mapping_refusal is not None and _MAPPINGS_PATH.match(environ.get("PATH_INFO", "")):
            request = parse_request(environ)
            refusal = self._mapping_refusal(environ, request) if request else None
            if refusal is not None:
                code, message = refusal
                return error_response(environ, start_response, code, message, status=400)
        caller = self.roles.caller(access_key)
        if caller is None:
            return forward()
        request = parse_request(environ)
        if request is None:
            return forward()
        action = iam_action(request)
        if action.lower() in _ALWAYS_ALLOWED:
            return forward()
        resource = resource_arn(request, caller.account)
        decision = self.roles.decide(caller.role_arn, action, resource)
        if decision == "allow":
            return forward()
        code, status = _DENIAL_CODES.get(request.service, ("AccessDenied", 403))
        message = denial_message(caller.arn, action, resource, decision)
        log.info("refused: %s", message)
        return error_response(environ, start_response, code, message, status=status)

    def _mapping_refusal(self, environ: dict[str, Any], request: SignedRequest) -> tuple[str, str] | None:
        match = _MAPPINGS_PATH.match(environ.get("PATH_INFO", ""))
        method = environ.get("REQUEST_METHOD")
        if match is None or method not in ("POST", "PUT"):
            return None
        assert self.mapping_refusal is not None
        return self.mapping_refusal(request.region, match.group("uuid") if method == "PUT" else "", request.params)
