"""One function process, in-process (in the style of awslambdaric's tests/test_bootstrap.py): a real runtime client
in a real child process, over the Runtime API, driven by WorkerProcess directly — no server, no poller, no sleeps.
Every test runs with AWS's client (awslambdaric) and with orderflow's stand-in (ric.py)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from orderflow.local.runtime.credentials import RoleCredentials
from orderflow.local.runtime.environment.launch import CLIENT_VARIABLE, has_awslambdaric, launch_for
from orderflow.local.runtime.environment.worker import FunctionSpec, WorkerProcess

CREDENTIALS = RoleCredentials("ASIATESTKEY", "secret", "token")


CLIENTS = ["orderflow", pytest.param("awslambdaric", marks=pytest.mark.skipif(not has_awslambdaric(), reason="Linux"))]


def worker_for(
    tmp_path: Path,
    source: str,
    timeout: int = 3,
    memory: int = 128,
    handler: str = "index.handler",
    runtime: str = "python3.13",
):
    code = tmp_path / "task"
    code.mkdir(exist_ok=True)
    (code / "index.py").write_text(textwrap.dedent(source))
    spec = FunctionSpec(
        name="fn",
        arn="arn:aws:lambda:eu-west-2:111122223333:function:fn",
        region="eu-west-2",
        handler=handler,
        runtime=runtime,
        timeout=timeout,
        memory_size=memory,
        variables={"TABLE_NAME": "Orders"},
        code_sha256="sha",
        code_dir=code,
        log_group="/aws/lambda/fn",
        role="arn:aws:iam::111122223333:role/fn-role",
    )
    return WorkerProcess(spec, "http://127.0.0.1:9", CREDENTIALS, launch_for(runtime))


@pytest.fixture(params=CLIENTS)
def make_worker(tmp_path, request, monkeypatch):
    monkeypatch.setenv(CLIENT_VARIABLE, request.param)
    made = []

    def make(*args, **kwargs):
        worker = worker_for(tmp_path, *args, **kwargs)
        made.append(worker)
        return worker

    yield make
    for worker in made:
        worker.close()


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
    # One process served both (fenced, it is PID 1 of its own namespace, so its number is not the worker's).
    assert first.payload["pid"] == second.payload["pid"] and worker.alive
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


def test_a_child_process_s_memory_is_the_function_s(make_worker):
    """Lambda counts the execution environment's memory whole: a child that allocates 300 MB under a 128 MB function
    ends the environment as the function's own allocation would."""
    worker = make_worker(
        """
        import subprocess, sys
        def handler(event, context):
            hog = "b = b'x' * (300 * 1024 * 1024); import time; time.sleep(30)"
            child = subprocess.run([sys.executable, "-c", hog])
            return child.returncode
        """
    )
    result = worker.invoke({}, "child-hog")
    assert result.error is not None and result.error["errorType"] == "Runtime.ExitError"
    assert result.max_memory_mb == 128
    assert not worker.alive


@pytest.mark.parametrize(
    ("source", "handler", "error_type", "at_init"),
    [
        ("import no_such_module\n", "index.handler", "Runtime.ImportModuleError", True),
        ("def handler(event, context)\n    return 1\n", "index.handler", "Runtime.UserCodeSyntaxError", True),
        ("def handler(event, context):\n    return 1\n", "index.missing", "Runtime.HandlerNotFound", True),
        ("def handler(event, context):\n    return object()\n", "index.handler", "Runtime.MarshalError", False),
        ("def handler(event, context):\n    raise KeyError('messageId')\n", "index.handler", "KeyError", False),
    ],
)
def test_errors_are_named_as_lambda_names_them(make_worker, source, handler, error_type, at_init):
    worker = make_worker(source, handler=handler)
    result = worker.invoke({}, "r")
    assert not result.succeeded and result.error["errorType"] == error_type
    assert any(line.startswith(f"[ERROR] {error_type}") for _, line in result.output)
    if at_init:  # the runtime reports it to /init/error and exits; Lambda starts a new environment next time
        assert result.init_ms is not None
        worker._process.wait(timeout=10)
        assert not worker.alive
    else:  # a failing handler is an outcome: the process stays warm for the next invocation
        assert worker.alive and result.error["requestId"] == "r"


def test_the_function_runs_on_the_python_its_runtime_names_where_there_is_one(make_worker):
    import shutil

    if shutil.which("python3.12") is None:
        pytest.skip("no python3.12 on this machine")
    worker = make_worker("import sys\ndef handler(event, context):\n    return list(sys.version_info[:2])\n",
                         runtime="python3.12")  # fmt: skip
    result = worker.invoke({}, "v")
    assert result.succeeded and result.payload == [3, 12]
