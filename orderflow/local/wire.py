"""What an AWS request on the wire is, and how an AWS error looks on the wire — for WSGI middleware around the
embedded AWS (the benchmarks' call counter, the reliability suite's fault injection)."""

from __future__ import annotations

import io
import json
from typing import Any
from urllib.parse import parse_qs

READ_PREFIXES = ("Get", "List", "Describe", "Head")


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
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length)
        environ["wsgi.input"] = io.BytesIO(body)  # leave the body for the app
        action = parse_qs(body.decode()).get("Action")
        if action:
            return action[0]
    return f"{environ.get('REQUEST_METHOD')} {path}"


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
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            "<RequestId>injected</RequestId></ErrorResponse>"
        ).encode()
        headers = [("Content-Type", "text/xml")]
    else:
        body = json.dumps({"message": message, "Type": "User"}).encode()
        headers = [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)]
    start_response(f"{status} Error", [*headers, ("Content-Length", str(len(body)))])
    return [body]
