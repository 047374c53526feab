"""A Lambda Runtime API client for Python handlers: orderflow's stand-in for AWS's `awslambdaric` where that does not
install (it publishes Linux wheels only) or cannot load (its compiled part is built for one Python, and a function may
run on another).

Run as a script in the function process (`python -s ric.py HANDLER`), never imported by the function; standard
library only, Python 3.9 and later. It does what awslambdaric's `bootstrap.run` does, in the same words: load the
handler (naming a failure Runtime.ImportModuleError, Runtime.UserCodeSyntaxError, Runtime.HandlerNotFound, …, and
reporting it to /init/error before exiting 1), then serve /invocation/next one at a time with a context object,
posting the JSON result or an error document whose type is the exception's class. Its log lines have awslambdaric's
text format. tests/unit/test_runtime_api.py runs both clients on the same handlers and compares what they send and
print, so the two cannot drift.
"""

from __future__ import annotations

import decimal
import http.client
import importlib
import json
import logging
import os
import sys
import time
import traceback
from typing import Any

ERROR_TYPE_HEADER = "Lambda-Runtime-Function-Error-Type"
ERROR_LOG_LINE_TERMINATE = "\r"
ERROR_LOG_IDENT = "\u00a0"
UNHANDLED_WARNING = (
    "LAMBDA_WARNING: Unhandled exception. The most likely cause is an issue in the function code. However, in rare "
    "cases, a Lambda runtime update can cause unexpected function behavior. For functions using managed runtimes, "
    "runtime updates can be triggered by a function change, or can be applied automatically. To determine if the "
    "runtime has been updated, check the runtime version in the INIT_START log entry. If this error correlates with "
    "a change in the runtime version, you may be able to mitigate this error by temporarily rolling back to the "
    "previous runtime version. For more information, see "
    "https://docs.aws.amazon.com/lambda/latest/dg/runtimes-update.html\r"
)
NON_ASCII_RUNTIMES = {f"AWS_Lambda_python3.{minor}" for minor in (12, 13, 14, 15)}
_request_id = ""


class Fault(Exception):
    def __init__(self, error_type: str, message: str, trace: list[str] | None = None) -> None:
        super().__init__(message)
        self.error_type, self.message, self.trace = error_type, message, trace


class Fields:
    """An object with named attributes, None where the document lacks them (awslambdaric's make_obj_from_dict)."""

    def __init__(self, names: tuple[str, ...], document: dict | None) -> None:
        for name in names:
            setattr(self, name, (document or {}).get(name))


def client_context(document: dict | None) -> Fields | None:
    if document is None:
        return None
    context = Fields(("custom", "env", "client"), document)
    names = ("installation_id", "app_title", "app_version_name", "app_version_code", "app_package_name")
    context.client = None if context.client is None else Fields(names, context.client)  # type: ignore[attr-defined]
    return context


def cognito_identity(document: dict | None) -> Fields:
    found = document or {}
    return Fields(
        ("cognito_identity_id", "cognito_identity_pool_id"),
        {
            "cognito_identity_id": found.get("cognitoIdentityId"),
            "cognito_identity_pool_id": found.get("cognitoIdentityPoolId"),
        },
    )


class Context:
    """The context object awslambdaric passes (attributes of the same names and meaning)."""

    def __init__(self, request_id: str, deadline_ms: int, function_arn: str, client_context: Any, identity: Any):
        self.aws_request_id = request_id
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE")
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION")
        self.invoked_function_arn = function_arn
        self.tenant_id = None
        self.client_context = client_context
        self.identity = identity
        self._deadline_ms = deadline_ms

    def get_remaining_time_in_millis(self) -> int:
        return max(0, self._deadline_ms - int(time.time() * 1000))

    def log(self, message: str) -> None:
        sys.stdout.write(message)


def make_error(message: str, error_type: str, trace: list[str] | None, request_id: str | None = None) -> dict:
    return {"errorMessage": message or "", "errorType": error_type or "", "requestId": request_id or "",
            "stackTrace": trace or []}  # fmt: skip


def log_error(error: dict) -> None:
    """awslambdaric's text format: one record, its lines joined by carriage returns, indents as no-break spaces."""
    description = "[ERROR]" + (f" {error['errorType']}" if error.get("errorType") else "")
    if error.get("errorMessage"):
        description += (":" if error.get("errorType") else "") + f" {error['errorMessage']}"
    lines = [description]
    if error.get("stackTrace") is not None:
        lines.append("Traceback (most recent call last):")
        for element in error["stackTrace"]:
            for line in element.splitlines() if element else [""]:
                stripped = line.lstrip(" ")
                lines.append(ERROR_LOG_IDENT * (len(line) - len(stripped)) + stripped)
    sys.stdout.write(ERROR_LOG_LINE_TERMINATE.join(lines) + "\n")


def load_handler(spec: str) -> Any:
    try:
        module_name, function_name = spec.rsplit(".", 1)
    except ValueError as e:
        raise Fault("Runtime.MalformedHandlerName", f"Bad handler '{spec}': {e}") from e
    try:
        if module_name.split(".")[0] in sys.builtin_module_names:
            raise Fault(
                "Runtime.BuiltInModuleConflict", f"Cannot use built-in module {module_name} as a handler module"
            )
        module = importlib.import_module(module_name.replace("/", "."))
    except ImportError as e:
        raise Fault("Runtime.ImportModuleError", f"Unable to import module '{module_name}': {e}") from e
    except SyntaxError as e:
        trace = [f'  File "{e.filename}" Line {e.lineno}\n    {e.text}']
        raise Fault("Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {e}", trace) from e
    try:
        return getattr(module, function_name)
    except AttributeError:
        raise Fault("Runtime.HandlerNotFound", f"Handler '{function_name}' missing on module '{module_name}'") from None


def _plain(value: Any) -> Any:
    """Decimals as the numbers they are (awslambdaric writes them raw with simplejson)."""
    if isinstance(value, decimal.Decimal):
        return float("nan") if value.is_nan() else int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def marshal(payload: Any) -> tuple[bytes, str]:
    if isinstance(payload, bytes):
        return payload, "application/unknown"
    ascii_only = os.environ.get("AWS_EXECUTION_ENV") not in NON_ASCII_RUNTIMES
    try:
        return json.dumps(payload, default=_plain, ensure_ascii=ascii_only).encode(), "application/json"
    except Exception as e:
        raise Fault("Runtime.MarshalError", f"Unable to marshal response: {e}") from e


def _frames_after_this_file(tb: Any) -> list[str]:
    frames = traceback.extract_tb(tb)
    here = os.path.abspath(__file__)
    for index, frame in enumerate(frames):
        if os.path.abspath(frame.filename) != here:
            frames = frames[index:]
            break
    # As plain tuples, as awslambdaric formats them (no column carets, whatever the Python).
    return traceback.format_list([(f.filename, f.lineno, f.name, f.line) for f in frames])  # type: ignore[misc]


class RuntimeApi:
    def __init__(self, address: str) -> None:
        self.connection = http.client.HTTPConnection(address)

    def call(self, method: str, path: str, body: bytes = b"", headers: dict | None = None) -> tuple[Any, bytes]:
        self.connection.request(method, f"/2018-06-01/runtime{path}", body=body, headers=headers or {})
        response = self.connection.getresponse()
        return response, response.read()

    def post(self, path: str, body: bytes, headers: dict | None = None) -> None:
        self.call("POST", path, body, headers)


class _RequestId(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = _request_id
        return True


class _Stdout(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        sys.stdout.write(self.format(record))


def setup_logging() -> None:
    """The root logger as awslambdaric sets it up (text format, UTC)."""
    logging.Formatter.converter = time.gmtime
    handler = _Stdout()
    handler.setFormatter(
        logging.Formatter(
            "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s\n", "%Y-%m-%dT%H:%M:%S"
        )
    )
    handler.addFilter(_RequestId())
    logging.getLogger().addHandler(handler)


def invoke(api: RuntimeApi, handler: Any, headers: Any, body: bytes) -> None:
    request_id = headers.get("Lambda-Runtime-Aws-Request-Id")
    try:
        context_header = headers.get("Lambda-Runtime-Client-Context")
        identity = headers.get("Lambda-Runtime-Cognito-Identity")
        context = Context(
            request_id,
            int(headers.get("Lambda-Runtime-Deadline-Ms")),
            headers.get("Lambda-Runtime-Invoked-Function-Arn"),
            client_context(json.loads(context_header)) if context_header else None,
            cognito_identity(json.loads(identity) if identity else None),
        )
        try:
            event = json.loads(body)
        except ValueError as e:
            raise Fault("Runtime.UnmarshalError", f"Unable to unmarshal input: {e}") from e
        result, content_type = marshal(handler(event, context))
    except Fault as fault:
        error = make_error(fault.message, fault.error_type, fault.trace, request_id)
    except Exception as e:  # noqa: BLE001 - a failing handler is an outcome, not the runtime's failure
        error = make_error(str(e), type(e).__name__, _frames_after_this_file(e.__traceback__), request_id)
    else:
        api.post(f"/invocation/{request_id}/response", result, {"Content-Type": content_type})
        return
    log_error(error)
    api.post(f"/invocation/{request_id}/error", json.dumps(error).encode(), {ERROR_TYPE_HEADER: error["errorType"]})


def main(argv: list[str]) -> None:
    global _request_id
    # This file's folder is no place for the handler to import from: the deployed code is (it leads PYTHONPATH).
    sys.path[0] = os.environ.get("LAMBDA_TASK_ROOT", os.getcwd())
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    sys.stderr.reconfigure(line_buffering=True)  # type: ignore[attr-defined]
    api = RuntimeApi(os.environ["AWS_LAMBDA_RUNTIME_API"])
    setup_logging()
    try:
        handler = load_handler(argv[1])
    except Fault as fault:
        error = make_error(fault.message, fault.error_type, fault.trace)
    except Exception as e:  # noqa: BLE001 - a module that raises at import is an init failure, as on Lambda
        error = make_error(str(e), type(e).__name__, _frames_after_this_file(e.__traceback__))
    else:
        while True:
            response, body = api.call("GET", "/invocation/next")
            if response.status != 200:
                sys.exit(1)  # the API is going away: so does the environment
            _request_id = response.headers.get("Lambda-Runtime-Aws-Request-Id") or ""
            invoke(api, handler, response.headers, body)
    logging.warning(UNHANDLED_WARNING)
    log_error(error)
    api.post("/init/error", json.dumps(error).encode(), {ERROR_TYPE_HEADER: error["errorType"]})
    sys.exit(1)


if __name__ == "__main__":
    main(sys.argv)
