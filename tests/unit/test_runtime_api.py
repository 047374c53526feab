"""The Runtime API the embedded runtime serves, and the two clients that speak it.

1. The API answers the documented routes (Lambda Developer Guide, "Using the Lambda runtime API for custom
   runtimes") to a client written against the documentation alone: plain http.client.
2. orderflow's stand-in client (ric.py) sends and prints exactly what AWS's awslambdaric does for the same handlers:
   the same result payloads, error documents and log lines. On Linux this holds awslambdaric whole (on the Python
   running these tests) and awslambdaric's Python parts on another Python (with runtime_client.py as transport).
"""

from __future__ import annotations

import http.client
import json
import re
import sys
import textwrap
import threading

import pytest

from orderflow.local.runtime.environment.launch import CLIENT_VARIABLE, has_awslambdaric
from orderflow.local.runtime.environment.runtime_api import MAX_RESPONSE_BYTES, Invocation, RuntimeApi
from tests.unit.test_runtime_worker import worker_for


@pytest.fixture
def api():
    endpoint = RuntimeApi()
    yield endpoint
    endpoint.close()


def call(api, method, path, body=b"", headers=None):
    connection = http.client.HTTPConnection(api.address, timeout=10)
    connection.request(method, f"/2018-06-01/runtime{path}", body=body, headers=headers or {})
    response = connection.getresponse()
    return response.status, dict(response.headers.items()), response.read()


def test_next_hands_out_the_event_with_lambdas_headers_and_the_answers_are_accepted(api):
    got = {}
    asking = threading.Thread(target=lambda: got.update(next=call(api, "GET", "/invocation/next")))
    asking.start()
    assert api.reports.get(timeout=10).kind == "next"  # the runtime asking is its sign it is ready
    api.offer(Invocation("req-1", b'{"a": 1}', 1_700_000_000_000, "arn:aws:lambda:r:1:function:f", "Root=1-x"))
    asking.join(timeout=10)
    status, headers, body = got["next"]
    assert status == 200 and json.loads(body) == {"a": 1}
    assert headers["Lambda-Runtime-Aws-Request-Id"] == "req-1"
    assert headers["Lambda-Runtime-Deadline-Ms"] == "1700000000000"
    assert headers["Lambda-Runtime-Invoked-Function-Arn"] == "arn:aws:lambda:r:1:function:f"
    assert headers["Lambda-Runtime-Trace-Id"] == "Root=1-x"
    assert "Lambda-Runtime-Client-Context" not in headers  # only when there is one

    status, _, body = call(api, "POST", "/invocation/req-1/response", b'{"ok": true}')
    assert (status, json.loads(body)) == (202, {"status": "OK"})
    report = api.reports.get(timeout=10)
    assert (report.kind, report.request_id, report.document()) == ("response", "req-1", {"ok": True})

    status, _, body = call(api, "POST", "/invocation/req-1/response", b"{}")  # answered already
    assert status == 400 and json.loads(body)["errorType"] == "InvalidRequestID"


def test_errors_init_errors_and_oversized_responses(api):
    api.offer(Invocation("req-2", b"{}", 0, "arn", "t"))
    error = {"errorMessage": "boom", "errorType": "ValueError", "stackTrace": []}
    headers = {"Lambda-Runtime-Function-Error-Type": "ValueError"}
    assert call(api, "POST", "/invocation/req-2/error", json.dumps(error).encode(), headers)[0] == 202
    report = api.reports.get(timeout=10)
    assert (report.kind, report.error_type, report.document()) == ("error", "ValueError", error)

    assert call(api, "POST", "/init/error", b'{"errorType": "Runtime.ImportModuleError"}', {})[0] == 202
    assert api.reports.get(timeout=10).kind == "init-error"

    api.offer(Invocation("req-3", b"{}", 0, "arn", "t"))
    status, _, _ = call(api, "POST", "/invocation/req-3/response", b"x" * (MAX_RESPONSE_BYTES + 1))
    assert status == 413
    assert api.reports.get(timeout=10).document()["errorType"] == "Function.ResponseSizeTooLarge"
    assert call(api, "GET", "/nowhere")[0] == 404


HANDLERS = {
    "returns": "def handler(event, context):\n    return {'order': event['id'], 'note': 'café', 'n': 1.5}\n",
    "decimal": "import decimal\ndef handler(event, context):\n    return {'q': decimal.Decimal('3')}\n",
    "prints and logs": textwrap.dedent(
        """
        import logging
        print("module loaded")
        def handler(event, context):
            print("handling", event["id"])
            logging.getLogger().warning("careful: %s", event["id"])
            logging.getLogger().info("not shown at the default level")
            return None
        """
    ),
    "raises": textwrap.dedent(
        """
        def inner(value):
            raise ValueError(f"bad value {value!r}")
        def handler(event, context):
            return inner(event["id"])
        """
    ),
    "context": textwrap.dedent(
        """
        def handler(event, context):
            identity = context.identity
            return {"request": context.aws_request_id, "function": context.function_name,
                    "memory": context.memory_limit_in_mb, "version": context.function_version,
                    "arn": context.invoked_function_arn, "group": context.log_group_name,
                    "client_context": context.client_context,
                    "identity": [identity.cognito_identity_id, identity.cognito_identity_pool_id],
                    "remaining": 0 < context.get_remaining_time_in_millis() <= 3000}
        """
    ),
    "bad partial batch response": "def handler(event, context):\n    return {'batchItemFailures': 'all'}\n",
    "cannot marshal": "def handler(event, context):\n    return {1, 2}\n",
    "import error": "import no_such_module\ndef handler(event, context):\n    return 1\n",
    "syntax error": "def handler(event, context)\n    return 1\n",
    "raises at import": "raise RuntimeError('no config')\ndef handler(event, context):\n    return 1\n",
}
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")


def run_client(tmp_path, monkeypatch, client: str, runtime: str, name: str):
    monkeypatch.setenv(CLIENT_VARIABLE, client)
    folder = tmp_path / client / runtime
    folder.mkdir(parents=True)
    worker = worker_for(folder, HANDLERS[name], runtime=runtime)
    try:
        result = worker.invoke({"id": "o-1"}, "request-1")
    finally:
        worker.close()
    lines = [TIMESTAMP.sub("<time>", line).replace(str(folder), "<dir>") for _, line in result.output]
    error = json.loads(json.dumps(result.error).replace(str(folder), "<dir>")) if result.error else None
    return result.succeeded, result.payload, error, lines


@pytest.mark.skipif(not has_awslambdaric(), reason="awslambdaric installs on Linux only")
@pytest.mark.parametrize("runtime", [f"python3.{sys.version_info.minor}", "python3.13"])
@pytest.mark.parametrize("name", list(HANDLERS))
def test_orderflows_client_sends_and_prints_what_awslambdaric_does(tmp_path, monkeypatch, runtime, name):
    theirs = run_client(tmp_path, monkeypatch, "awslambdaric", runtime, name)
    ours = run_client(tmp_path, monkeypatch, "orderflow", runtime, name)
    assert ours == theirs
    if name == "raises":
        succeeded, _, error, lines = theirs
        assert not succeeded and error["errorType"] == "ValueError" and error["errorMessage"] == "bad value 'o-1'"
        assert lines[0].startswith("[ERROR] ValueError: bad value 'o-1'\rTraceback (most recent call last):")
    if name == "import error":
        assert theirs[2]["errorMessage"] == "Unable to import module 'index': No module named 'no_such_module'"
