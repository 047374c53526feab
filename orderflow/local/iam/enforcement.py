"""The embedded AWS refuses what AWS refuses: a WSGI middleware in front of moto.

- Calls signed by an IAM user's access key or a role session's keys (the functions' and the pollers' too — see
  runtime/credentials.py) are allowed or refused by that identity's policies and permissions boundary, for every
  action the call needs (local/iam/actions.py) on its exact resource, with the request context AWS supplies and
  the error code and message the service itself returns. Other keys stay unrestricted, as an administrator's.
- IAM refuses a malformed policy document when it is written (MalformedPolicyDocument), so no evaluator guesses.
- SimulatePrincipalPolicy and SimulateCustomPolicy are answered by the same evaluator (local/iam/simulate.py).
- CreateEventSourceMapping / UpdateEventSourceMapping refuse what Lambda refuses (see `mapping_refusal`).
- Any IAM write invalidates the cached decisions, so a changed policy applies to the next call.
"""

from __future__ import annotations

import contextlib
import logging
import re
import threading
from collections.abc import Callable
from typing import Any

from orderflow.iam.documents import MalformedPolicy, validate
from orderflow.iam.evaluation import denial_message
from orderflow.local.iam import identities as identity_store
from orderflow.local.iam.actions import needs
from orderflow.local.iam.identities import Caller, Identities
from orderflow.local.iam.mapping_rules import STATUS
from orderflow.local.iam.simulate import simulate
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
    "cloudwatch": ("AccessDenied", 403),
}
# Actions every identity may call whatever its policies say (STS API reference, GetCallerIdentity).
_ALWAYS_ALLOWED = {"sts:getcalleridentity"}
_MAPPINGS_PATH = re.compile(r"^/2015-03-31/event-source-mappings/?(?P<uuid>[^/]*)$")
# IAM writes that carry a policy document, and the kind of document (a trust policy names a principal).
_DOCUMENTS = {
    "PutRolePolicy": ("PolicyDocument", "identity"),
    "PutUserPolicy": ("PolicyDocument", "identity"),
    "PutGroupPolicy": ("PolicyDocument", "identity"),
    "CreatePolicy": ("PolicyDocument", "identity"),
    "CreatePolicyVersion": ("PolicyDocument", "identity"),
    "CreateRole": ("AssumeRolePolicyDocument", "trust"),
    "UpdateAssumeRolePolicy": ("PolicyDocument", "trust"),
}
_IAM_NS = "https://iam.amazonaws.com/doc/2010-05-08/"
_QUEUE_POLICY_WRITES = ("SetQueueAttributes", "CreateQueue")
_SIMULATIONS = ("SimulatePrincipalPolicy", "SimulateCustomPolicy")
_USER_BOUNDARY = ("CreateUser", "PutUserPermissionsBoundary", "DeleteUserPermissionsBoundary")


def _xml(environ: dict[str, Any], start_response: Any, body: str) -> list[bytes]:
    data = body.encode()
    start_response("200 OK", [("Content-Type", "text/xml"), ("Content-Length", str(len(data)))])
    return [data]


class Enforcement:
    """WSGI middleware: role sessions are held to their policies; mapping creation follows Lambda's rules."""

    def __init__(
        self,
        app: Callable[..., Any],
        roles: Identities,
        mapping_refusal: Callable[[str, str, dict[str, Any]], tuple[str, str] | None] | None = None,
        on_lambda_write: Callable[[], None] | None = None,
    ) -> None:
        self.app = app
        self.roles = roles
        self.mapping_refusal = mapping_refusal
        # Told after every Lambda write, so the runtime applies new code, configuration and mappings to the very
        # next invocation (as AWS does once an update is Successful) instead of at its next poll of the API.
        self.on_lambda_write = on_lambda_write
        self._mapping_writes = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        # Most calls are an administrator's: decide from the header alone and leave their bodies unread.
        scope = credential_scope(environ)
        if scope is None:
            return self.app(environ, start_response)
        access_key, _, service = scope
        # IAM writes, and a queue's policy (a resource policy the decisions read): cached decisions are dropped. The
        # operation is read only where it matters (for a query-protocol call it means reading the body).
        operation = (operation_of(environ) or "Get") if service in ("iam", "sqs") else "Get"
        writes_iam = (service == "iam" and not is_read(operation)) or operation == "SetQueueAttributes"
        writes_lambda = service == "lambda" and environ.get("REQUEST_METHOD") in ("POST", "PUT", "DELETE")

        def forward() -> Any:
            response = self.app(environ, start_response)  # moto applies the change while answering
            # Only now is the change in place: forgetting earlier would let a concurrent call cache the old answer.
            if writes_iam:
                self.roles.invalidate()
            if writes_lambda and self.on_lambda_write is not None:
                self.on_lambda_write()
            return response

        caller = self.roles.caller(access_key)
        if caller is None and self.roles.revoked(access_key):
            message = "The security token included in the request is invalid."
            return error_response(environ, start_response, "InvalidClientTokenId", message, status=403)
        if caller is None and service not in ("iam", "lambda") and operation not in _QUEUE_POLICY_WRITES:
            return forward()  # an administrator's call to a service with no rule of its own here: body unread
        request = parse_request(environ)
        if request is None:
            return forward()
        if caller is not None:
            refused = self._refusal(caller, request)
            if refused is not None:
                code, status, message = refused
                log.info("refused: %s", message)
                return error_response(environ, start_response, code, message, status=status)
        # A mapping is checked and written as one step: of two concurrent creates of one mapping, one is refused.
        writes_mapping = writes_lambda and _MAPPINGS_PATH.match(environ.get("PATH_INFO", ""))
        with self._mapping_writes if writes_mapping else contextlib.nullcontext():
            answered = self._service_checks(environ, start_response, request, writes_lambda)
            return forward() if answered is None else answered

    def _service_checks(
        self, environ: dict[str, Any], start_response: Any, request: SignedRequest, writes_lambda: bool
    ) -> Any:
        """Each service's own refusals (and the IAM calls moto lacks), whoever the caller; None: moto answers."""
        if request.service == "iam":
            return self._iam(environ, start_response, request)
        if request.operation in _QUEUE_POLICY_WRITES:
            try:  # SQS API Reference, SetQueueAttributes: a Policy SQS cannot read is InvalidAttributeValue
                policy = (request.params.get("Attributes") or {}).get("Policy")
                if policy:
                    validate(policy, "resource")
            except MalformedPolicy as e:
                message = f"Invalid value for the parameter Policy. Reason: {e}"
                return error_response(environ, start_response, "InvalidAttributeValue", message, status=400)
        if writes_lambda and self.mapping_refusal is not None:
            refusal = self._mapping_refusal(environ, request)
            if refusal is not None:
                code, message = refusal
                return error_response(environ, start_response, code, message, status=STATUS.get(code, 400))
        return None

    def _refusal(self, caller: Caller, request: SignedRequest) -> tuple[str, int, str] | None:
        """(code, status, message) of the first action the caller may not perform, or None."""
        for need in needs(request, caller.account, _mapping_function(request)):
            if need.action.lower() in _ALWAYS_ALLOWED:
                continue
            verdict = self.roles.authorize(caller, need.action, need.resource, request.region, need.context)
            if verdict.decision != "allow":
                code, status = _DENIAL_CODES.get(request.service, ("AccessDenied", 403))
                return code, status, denial_message(caller.arn, need.action, need.resource, verdict)
        return None

    def _iam(self, environ: dict[str, Any], start_response: Any, request: SignedRequest) -> Any:
        """IAM's own checks and the calls moto lacks; None: moto answers."""
        operation, params = request.operation, request.params
        try:
            if operation in _DOCUMENTS:
                name, kind = _DOCUMENTS[operation]
                if name in params:
                    validate(params[name], kind)
            if operation in _SIMULATIONS:
                return _xml(environ, start_response, simulate(operation, params, self.roles))
        except MalformedPolicy as e:
            return error_response(environ, start_response, "MalformedPolicyDocument", str(e), status=400)
        except LookupError as e:
            message = f"Invalid value for PolicySourceArn: {e} does not name a user, group or role"
            return error_response(environ, start_response, "NoSuchEntity", message, status=404)
        if operation in _USER_BOUNDARY:
            return self._user_boundary(environ, start_response, request)
        return None

    def _user_boundary(self, environ: dict[str, Any], start_response: Any, request: SignedRequest) -> Any:
        """moto keeps no boundary for users: recorded here, for the evaluator (CreateUser goes on to moto)."""
        params = request.params
        account = next(iter(identity_store.accounts()), "")
        user = f"arn:aws:iam::{account}:user/{params.get('UserName', '')}"
        self.roles.invalidate()
        if request.operation == "CreateUser":
            if params.get("PermissionsBoundary"):
                identity_store.USER_BOUNDARIES[user] = str(params["PermissionsBoundary"])
            return None
        if request.operation == "PutUserPermissionsBoundary":
            identity_store.USER_BOUNDARIES[user] = str(params.get("PermissionsBoundary", ""))
        else:
            identity_store.USER_BOUNDARIES.pop(user, None)
        op = request.operation
        metadata = "<ResponseMetadata><RequestId>orderflow-local</RequestId></ResponseMetadata>"
        return _xml(environ, start_response, f'<{op}Response xmlns="{_IAM_NS}">{metadata}</{op}Response>')

    def _mapping_refusal(self, environ: dict[str, Any], request: SignedRequest) -> tuple[str, str] | None:
        match = _MAPPINGS_PATH.match(environ.get("PATH_INFO", ""))
        if match is None:
            return None
        method = environ.get("REQUEST_METHOD")
        if match is None or method not in ("POST", "PUT"):
            return None
        assert self.mapping_refusal is not None
        return self.mapping_refusal(request.region, match.group("uuid") if method == "PUT" else "", request.params)


def _mapping_function(request: SignedRequest) -> Callable[[str], str | None] | None:
    """How to find the function of an event source mapping a Lambda call names (for lambda:FunctionArn)."""
    if request.service != "lambda":
        return None

    def function_of(uuid: str) -> str | None:
        from moto.awslambda.models import lambda_backends

        for backends in list(lambda_backends.values()):
            backend = backends.get(request.region) if request.region in backends else None
            mapping = backend.get_event_source_mapping(uuid) if backend is not None else None
            if mapping is not None:
                return str(mapping.function_arn)
        return None

    return function_of
