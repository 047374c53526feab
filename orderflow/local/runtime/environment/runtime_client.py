"""The transport awslambdaric expects as its compiled `runtime_client` module, in plain Python.

awslambdaric's wheel carries that module built for one Python (the one orderflow runs on). A function on another
Python (its runtime's version, found by `interpreters.find`) imports this file under the same name instead, so the
rest of awslambdaric — handler loading, error documents, log lines, marshalling — is AWS's own code there too.
Standard library only; Python 3.9 and later. The calls and their arguments are those awslambdaric makes
(lambda_runtime_client.py): initialize_client, next, post_invocation_result, post_error.
"""

from __future__ import annotations

import http.client
import json
import os

_PREFIX = "/2018-06-01/runtime"
_connection = None
_user_agent = ""


def initialize_client(user_agent: str) -> None:
    global _user_agent
    _user_agent = user_agent


def _call(method: str, path: str, body: bytes = b"", headers: dict | None = None, expect: int = 202):
    global _connection
    if _connection is None:
        _connection = http.client.HTTPConnection(os.environ["AWS_LAMBDA_RUNTIME_API"])
    _connection.request(method, _PREFIX + path, body=body, headers={"User-Agent": _user_agent, **(headers or {})})
    response = _connection.getresponse()
    data = response.read()
    if response.status != expect:
        raise RuntimeError(f"Runtime API {method} {path} answered {response.status}: {data[:200]!r}")
    return data, response


def next():
    body, response = _call("GET", "/invocation/next", expect=200)
    headers = dict(response.headers.items())
    # The compiled client hands the deadline over as a number (awslambdaric subtracts from it).
    deadline = headers.get("Lambda-Runtime-Deadline-Ms")
    if deadline is not None:
        headers["Lambda-Runtime-Deadline-Ms"] = int(deadline)
    return body, headers


def post_invocation_result(invoke_id, result_data, content_type="application/json", invocation_id=None):
    _call("POST", f"/invocation/{invoke_id}/response", result_data, {"Content-Type": content_type})


def post_error(invoke_id, error_response_data, xray_fault, invocation_id=None):
    try:
        error_type = json.loads(error_response_data).get("errorType", "")
    except ValueError:
        error_type = ""
    headers = {"Lambda-Runtime-Function-Error-Type": error_type, "Content-Type": "application/json"}
    if xray_fault:
        headers["Lambda-Runtime-Function-XRay-Error-Cause"] = xray_fault
    _call("POST", f"/invocation/{invoke_id}/error", error_response_data.encode(), headers)
