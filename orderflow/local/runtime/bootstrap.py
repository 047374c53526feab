"""The inside of one warm function process: load the handler once, then serve invocations one at a time.

Run as a script (`python -I bootstrap.py CODE_DIR`), never imported by the function: it uses only the standard
library, puts the deployed code first on sys.path, and talks to the runtime over three channels:
- stdin: one JSON request per line ({"requestId", "event", "deadlineMs", …});
- stdout and stderr (one pipe): whatever the handler prints, then a sentinel line closing each invocation;
- the result pipe (fd in _ORDERFLOW_RESULT_FD): one JSON result per invocation.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import time
import traceback
from typing import Any

SENTINEL = "\x00orderflow-end "


class LambdaContext:
    """The context object AWS passes to a Python handler."""

    def __init__(self, request: dict[str, Any]) -> None:
        self.function_name = os.environ["AWS_LAMBDA_FUNCTION_NAME"]
        self.function_version = os.environ.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.invoked_function_arn = request["invokedFunctionArn"]
        self.memory_limit_in_mb = os.environ.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        self.aws_request_id = request["requestId"]
        self.log_group_name = os.environ.get("AWS_LAMBDA_LOG_GROUP_NAME")
        self.log_stream_name = os.environ.get("AWS_LAMBDA_LOG_STREAM_NAME")
        self.identity = None
        self.client_context = None
        self._deadline_ms = request["deadlineMs"]

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline_ms - time.time() * 1000))


def _error(kind: str, exc: BaseException) -> dict[str, Any]:
    return {
        "errorType": kind,
        "errorMessage": str(exc),
        "stackTrace": traceback.format_exception(type(exc), exc, exc.__traceback__)[1:],
    }


def _failed(kind: str, exc: BaseException) -> dict[str, Any]:
    print(f"[ERROR] {kind}: {exc}", file=sys.stderr)
    traceback.print_exception(type(exc), exc, exc.__traceback__)
    return {"ok": False, "error": _error(kind, exc)}


def peak_memory_mb() -> int:
    """Peak resident memory of this function process, as REPORT's "Max Memory Used".

    Not ru_maxrss: on Linux it survives exec, so a process started by a large server would report the server's
    size. VmHWM belongs to this program's own memory alone."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) // 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak // (1024 * 1024) if sys.platform == "darwin" else peak // 1024  # bytes on macOS, KiB elsewhere


def _load_handler(spec: str) -> tuple[Any, dict[str, Any] | None]:
    module_name, _, function_name = spec.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except SyntaxError as e:  # named by the exception's class, as awslambdaric names it
        return None, _error("Runtime.UserCodeSyntaxError", e)
    except Exception as e:  # noqa: BLE001 - reported to every invocation, as Lambda does
        return None, _error("Runtime.ImportModuleError", e)
    handler = getattr(module, function_name, None)
    if not callable(handler):
        message = f"Handler '{function_name}' missing on module '{module_name}'"
        return None, {"errorType": "Runtime.HandlerNotFound", "errorMessage": message, "stackTrace": []}
    return handler, None


def main() -> None:
    code_dir = sys.argv[1]
    results = os.fdopen(int(os.environ.pop("_ORDERFLOW_RESULT_FD")), "w", buffering=1)
    requests = os.fdopen(os.dup(0), "r")
    sys.stdin = open(os.devnull)  # noqa: SIM115 - the handler must not read the runtime's requests
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [code_dir, *[p for p in sys.path if p and os.path.abspath(p) != here]]
    os.chdir(code_dir)
    sys.stdout.reconfigure(line_buffering=True)
    sys.stderr.reconfigure(line_buffering=True)

    init_started = time.monotonic()
    handler, init_error = _load_handler(os.environ["_HANDLER"])
    init_ms = (time.monotonic() - init_started) * 1000
    if init_error:
        print(json.dumps(init_error), file=sys.stderr)
    # Announced at once, so even an invocation that later times out can report its cold start.
    results.write(json.dumps({"initMs": init_ms}) + "\n")

    for line in requests:
        request = json.loads(line)
        result: dict[str, Any]
        if handler is None:
            result = {"ok": False, "error": init_error}
        else:
            try:
                payload = handler(request["event"], LambdaContext(request))
            except Exception as e:  # noqa: BLE001 - a failing handler is an outcome, not a runtime crash
                result = _failed(type(e).__name__, e)
            else:
                try:  # a result that is not JSON fails as Lambda's runtime fails it: by the step, not the message
                    result = {"ok": True, "payload": json.loads(json.dumps(payload))}
                except (TypeError, ValueError) as e:
                    result = _failed("Runtime.MarshalError", e)
        result["maxMemoryMb"] = peak_memory_mb()
        sys.stdout.flush()
        sys.stderr.flush()
        os.write(1, f"{SENTINEL}{request['requestId']}\n".encode())
        results.write(json.dumps(result, default=str) + "\n")


if __name__ == "__main__":
    main()
