"""One function process, in-process (in the style of awslambdaric's tests/test_bootstrap.py): the real bootstrap
in a real child process, driven by WorkerProcess directly — no server, no poller, no sleeps."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from orderflow.local.runtime.credentials import RoleCredentials
from orderflow.local.runtime.worker import FunctionSpec, WorkerProcess

CREDENTIALS = RoleCredentials("ASIATESTKEY", "secret", "token")


def worker_for(tmp_path: Path, source: str, timeout: int = 3, memory: int = 128, handler: str = "index.handler"):
    code = tmp_path / "task"
    code.mkdir()
    (code / "index.py").write_text(textwrap.dedent(source))
    spec = FunctionSpec(
        name="fn",
        arn="arn:aws:lambda:eu-west-2:111122223333:function:fn",
        region="eu-west-2",
        handler=handler,
        runtime="python3.13",
        timeout=timeout,
        memory_size=memory,
        variables={"TABLE_NAME": "Orders"},
        code_sha256="sha",
        code_dir=code,
        log_group="/aws/lambda/fn",
        role="arn:aws:iam::111122223333:role/fn-role",
    )
    return WorkerProcess(spec, "http://127.0.0.1:9", CREDENTIALS)


@pytest.fixture
def make_worker(tmp_path):
    made = []

    def make(*args, **kwargs):
        worker = worker_for(tmp_path, *args, **kwargs)
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.kill()


def test_a_warm_process_is_reused_and_its_module_code_runs_once(make_worker):
    worker = make_worker(
        """
        import os
        INITS = []
        INITS.append(os.getpid())
        def handler(event, context):
            return {"pid": os.getpid(), "inits": len(INITS), "key": os.environ["AWS_ACCESS_KEY_ID"],
                    "request": context.aws_request_id, "remaining": context.get_remaining_time_in_millis()}
        """
    )
    first, second = worker.invoke({}, "r-1"), worker.invoke({}, "r-2")
    assert first.succeeded and second.succeeded
    assert first.payload["pid"] == second.payload["pid"] == worker.pid
    assert second.payload["inits"] == 1  # warm: the module was not imported again
    assert first.init_ms is not None and second.init_ms is None
    assert (first.payload["request"], second.payload["request"]) == ("r-1", "r-2")
    assert first.payload["key"] == "ASIATESTKEY"  # the execution role's credentials, not the runtime's
    assert 0 < first.payload["remaining"] <= 3000


def test_a_handler_over_its_timeout_is_killed(make_worker):
    worker = make_worker("import time\ndef handler(event, context):\n    time.sleep(30)\n", timeout=1)
    result = worker.invoke({}, "slow")
    assert not result.succeeded and result.timed_out
    assert result.error == {"errorType": "Sandbox.Timedout", "errorMessage": "Task timed out after 1.00 seconds"}
    assert 1000 <= result.duration_ms < 10_000
    assert not worker.alive


def test_a_process_over_its_memory_size_is_killed(make_worker):
    worker = make_worker(
        "def handler(event, context):\n    block = b'x' * (300 * 1024 * 1024)\n    return len(block)\n"
    )
    result = worker.invoke({}, "hog")
    assert result.error["errorType"] == "Runtime.ExitError"
    assert result.error["errorMessage"].endswith("Runtime exited with error: signal: killed")
    assert result.max_memory_mb == 128
    assert not worker.alive


@pytest.mark.parametrize(
    ("source", "handler", "error_type"),
    [
        ("import no_such_module\n", "index.handler", "Runtime.ImportModuleError"),
        ("def handler(event, context)\n    return 1\n", "index.handler", "Runtime.UserCodeSyntaxError"),
        ("def handler(event, context):\n    return 1\n", "index.missing", "Runtime.HandlerNotFound"),
        ("def handler(event, context):\n    return object()\n", "index.handler", "Runtime.MarshalError"),
        ("def handler(event, context):\n    raise KeyError('messageId')\n", "index.handler", "KeyError"),
    ],
)
def test_errors_are_named_as_lambda_names_them(make_worker, source, handler, error_type):
    worker = make_worker(source, handler=handler)
    result = worker.invoke({}, "r")
    assert not result.succeeded and result.error["errorType"] == error_type
    assert worker.alive  # a failing handler is an outcome: the process stays warm for the next invocation
    assert any(error_type in line for _, line in result.output)
