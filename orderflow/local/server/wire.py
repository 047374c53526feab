"""What an AWS request on the wire is, and how an AWS error looks on the wire — for WSGI middleware around the
embedded AWS (the role enforcement, the benchmarks' call counter, the reliability suite's fault injection)."""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

READ_PREFIXES = ("Get", "List", "Describe", "Head", "Simulate")  # IAM's simulator changes nothing
# SigV4: "AWS4-HMAC-SHA256 Credential=AKID/20261127/us-east-1/dynamodb/aws4_request, SignedHeaders=…, Signature=…"
_CREDENTIAL = re.compile(r"Credential=([^/,\s]+)/[^/]+/([^/]+)/([^/]+)/")


def _body(environ: dict[str, Any]) -> bytes:
    """The request body, left in place for the app to read again."""
    length = int(environ.get("CONTENT_LENGTH") or 0)
    body = environ["wsgi.input"].read(length) if length else b""
    environ["wsgi.input"] = io.BytesIO(body)
    return body


def operation_of(environ: dict[str, Any]) -> str | None:
    """The operation a request calls, whatever the protocol: JSON target, query Action, or REST method + path.
    None for moto's own control API."""
    path = environ.get("PATH_INFO", "")
    if path.startswith("/moto-api"):
        return None
    target = environ.get("HTTP_X_AMZ_TARGET")
    if target:
        return target.rsplit(".", 1)[-1]
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        action = parse_qs(_body(environ).decode()).get("Action")
        if action:
            return action[0]
    return f"{environ.get('REQUEST_METHOD')} {path}"


@dataclass(frozen=True)
class SignedRequest:
    """Who calls what: the SigV4 credential scope (access key, region, signing service), the operation, and the
    request's parameters (JSON body, query form, or REST JSON body)."""

    access_key: str
    region: str
    service: str
    operation: str
    params: dict[str, Any] = field(default_factory=dict)


def credential_scope(environ: dict[str, Any]) -> tuple[str, str, str] | None:
    """(access key, region, signing service) of a SigV4-signed request, read from its header alone (cheap: no body)."""
    match = _CREDENTIAL.search(environ.get("HTTP_AUTHORIZATION", ""))
    return None if match is None else (match.group(1), match.group(2), match.group(3))


def parse_request(environ: dict[str, Any]) -> SignedRequest | None:
    """The signed request, or None for unsigned ones (moto's control API, presigned URLs)."""
    scope = credential_scope(environ)
    operation = operation_of(environ)
    if scope is None or operation is None:
        return None
    access_key, region, service = scope
    params: dict[str, Any] = {}
    body = _body(environ)
    if environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        params = {k: v[0] for k, v in parse_qs(body.decode(errors="replace")).items()}
    elif body[:1] == b"{":
        try:
            loaded = json.loads(body)
        except ValueError:
            loaded = None
        params = loaded if isinstance(loaded, dict) else {}
    return SignedRequest(access_key, region, service, operation, params)


def is_read(operation: str) -> bool:
    return operation.startswith(READ_PREFIXES) or operation.startswith(("GET ", "HEAD "))


def error_response(
    environ: dict[str, Any], start_response: Any, code: str, message: str, status: int = 400
) -> list[bytes]:
    """An AWS error in the protocol the request used, so that botocore raises it as a ClientError with `code`."""
    if environ.get("HTTP_X_AMZ_TARGET"):
        body = json.dumps({"__type": code, "message": message}).encode()
        headers = [("Content-Type", "application/x-amz-json-1.0"), ("x-amzn-query-error", f"{code};Sender")]
    elif environ.get("CONTENT_TYPE", "").startswith("application/x-www-form-urlencoded"):
        escaped = message.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{escaped}</Message></Error>"
            "<RequestId>orderflow-local</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml")]
    else:
        body = json.dumps({"message": message, "Type": "User"}).encode()
        headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)]
    start_response(f"{status} Error", [*headers, ("Content-Length", str(len(body)))])
    return [body]
