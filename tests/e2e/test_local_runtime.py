"""The embedded AWS and its docker-less Lambda runtime, driven through the real CLI with the real handler."""

from __future__ import annotations

import base64
import io
import json
import re
import socket
import time
import zipfile
from pathlib import Path

import pytest

from orderflow.local.runtime.environment.launch import CLIENT_VARIABLE
from tests.e2e.conftest import ORDER, Aws, Cli, free_port, mapping_stopped, wait_for

pytestmark = pytest.mark.e2e
FAST = ["--function-timeout", "1", "--visibility-timeout", "6"]


def _zip(source: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", source)
    return buffer.getvalue()


def test_happy_path_order_lands_in_dynamodb_with_log_lines(cli, aws, stack):
    cli("--local", "--stack", stack, "up")
    [published] = cli.json("--stack", stack, "publish-test")["published"]
    item = wait_for(lambda: aws.item(f"{stack}-Orders", published["orderId"]), 15, "the order in DynamoDB")
    assert item["userId"] == {"S": "U123"} and item["quantity"] == {"N": "1"}
    messages = wait_for(
        lambda: (
            [m for m in aws.log_messages(f"/aws/lambda/{stack}-ProcessOrderFunction") if m.startswith("REPORT")]
            and aws.log_messages(f"/aws/lambda/{stack}-ProcessOrderFunction")
        ),
        10,
        "the REPORT line",
    )
    assert any(m.startswith("START RequestId: ") and m.endswith("Version: $LATEST") for m in messages)
    assert any(m.startswith("END RequestId: ") for m in messages)
    [record] = [json.loads(m) for m in messages if m.startswith("{")]
    assert record["outcome"] == "written" and record["snsMessageId"] == published["messageId"]
    # The function process's own peak (Python + boto3), not the size of the server that started it.
    [report] = [m for m in messages if m.startswith("REPORT")]
    used = int(re.search(r"Max Memory Used: (\d+) MB", report).group(1))
    assert 10 <= used < 128, report


@pytest.mark.slow
def test_mixed_batch_writes_good_orders_once_and_dead_letters_poison_after_exactly_three_runs(cli, aws, stack):
    cli("--local", "--stack", stack, "up", *FAST)
    good = [f"good-{i}" for i in range(3)]
    entries = [json.dumps(ORDER | {"orderId": o}) for o in good] + [
        "not json at all",
        json.dumps(ORDER | {"orderId": "q0", "quantity": 0}),
    ]
    topic = f"arn:aws:sns:us-east-1:{aws.account}:{stack}-OrderTopic"
    aws.client("sns").publish_batch(
        TopicArn=topic, PublishBatchRequestEntries=[{"Id": str(i), "Message": m} for i, m in enumerate(entries)]
    )
    wait_for(lambda: aws.depth(f"{stack}-OrderQueueDLQ") == 2, 60, "two dead letters")
    records = aws.handler_records(f"/aws/lambda/{stack}-ProcessOrderFunction")
    for order_id in good:
        assert [r["outcome"] for r in records if r.get("orderId") == order_id] == ["written"]
        assert aws.item(f"{stack}-Orders", order_id)
    failed = [r for r in records if r["outcome"] == "invalid"]
    by_message: dict[str, list[str]] = {}
    for r in failed:
        by_message.setdefault(r["sqsMessageId"], []).append(r["attempt"])
    assert sorted(by_message.values()) == [["1", "2", "3"], ["1", "2", "3"]]
    assert aws.depth(f"{stack}-OrderQueue") == 0
    assert aws.item(f"{stack}-Orders", "q0") is None


@pytest.mark.slow
def test_a_handler_over_its_timeout_is_killed_and_its_message_retried(cli, aws, stack):
    cli("--local", "--stack", stack, "up", *FAST)
    function = f"{stack}-ProcessOrderFunction"
    aws.client("lambda").update_function_code(
        FunctionName=function, ZipFile=_zip("import time\n\ndef lambda_handler(event, context):\n    time.sleep(5)\n")
    )
    # No wait: the embedded AWS applies new code to the very next invocation, as AWS does once the update is done.
    aws.client("sqs").send_message(QueueUrl=aws.queue_url(f"{stack}-OrderQueue"), MessageBody="slow")
    group = f"/aws/lambda/{function}"
    wait_for(
        lambda: sum("Task timed out after 1.00 seconds" in m for m in aws.log_messages(group)) >= 2,
        30,
        "two timed-out attempts",
    )
    messages = aws.log_messages(group)
    # The killed process is replaced: each attempt is a cold start in a fresh log stream.
    assert sum("Init Duration" in m for m in messages if m.startswith("REPORT")) >= 2
    assert aws.depth(f"{stack}-OrderQueue") + aws.depth(f"{stack}-OrderQueueDLQ") == 1
    assert cli("--local", "local", "status").returncode == 0


def test_the_function_runs_deployed_code_warm_with_lambda_context_and_environment(cli, aws, stack, embedded):
    cli("--local", "--stack", stack, "up")
    function = f"{stack}-ProcessOrderFunction"
    probe = (
        "import json, os\n"
        "import boto3\n"
        "print('INIT', os.getpid())\n"
        "def lambda_handler(event, context):\n"
        "    print(json.dumps({'probe': True, 'pid': os.getpid(), 'request': context.aws_request_id,\n"
        "        'remaining': context.get_remaining_time_in_millis(), 'name': context.function_name,\n"
        "        'arn': context.invoked_function_arn, 'memory': context.memory_limit_in_mb,\n"
        "        'group': context.log_group_name, 'stream': context.log_stream_name,\n"
        "        'env': {k: os.environ.get(k) for k in ('AWS_LAMBDA_FUNCTION_NAME', 'AWS_REGION', '_HANDLER',\n"
        "            'TABLE_NAME', 'AWS_ENDPOINT_URL', 'AWS_LAMBDA_LOG_GROUP_NAME',\n"
        "            'LAMBDA_TASK_ROOT', 'AWS_EXECUTION_ENV', 'ORDERFLOW_HOME')},\n"
        "        'identity': boto3.client('sts').get_caller_identity()['Arn'],\n"
        "        'records': len(event['Records'])}))\n"
        "    return {'batchItemFailures': []}\n"
    )
    aws.client("lambda").update_function_code(FunctionName=function, ZipFile=_zip(probe))
    queue = aws.queue_url(f"{stack}-OrderQueue")
    group = f"/aws/lambda/{function}"

    def probes():
        return [json.loads(m) for m in aws.log_messages(group) if m.startswith('{"probe"')]

    aws.client("sqs").send_message(QueueUrl=queue, MessageBody="one")
    wait_for(lambda: len(probes()) == 1, 15, "the first invocation")
    aws.client("sqs").send_message(QueueUrl=queue, MessageBody="two")
    first, second = wait_for(lambda: probes() if len(probes()) == 2 else None, 15, "the second invocation")

    assert first["request"] != second["request"]
    assert 0 < first["remaining"] <= 3000
    assert first["name"] == function and first["arn"].endswith(f":function:{function}")
    assert first["group"] == group and first["stream"].startswith(time.strftime("%Y/%m/%d/[$LATEST]", time.gmtime()))
    # The deployed zip, unpacked per code version in the runtime's own work folder: not the source tree.
    task_root = first["env"].pop("LAMBDA_TASK_ROOT")
    assert re.search(rf"/orderflow-lambda-\d+-[^/]+/{function}-[0-9a-f]{{16}}/task$", task_root), task_root
    assert first["env"] == {
        "AWS_LAMBDA_FUNCTION_NAME": function,
        "AWS_REGION": "us-east-1",
        "_HANDLER": "index.lambda_handler",
        "TABLE_NAME": f"{stack}-Orders",
        "AWS_ENDPOINT_URL": embedded,
        "AWS_LAMBDA_LOG_GROUP_NAME": group,
        "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
        "ORDERFLOW_HOME": None,  # nothing leaks in from the runtime's own environment
    }
    # The function calls AWS as its execution role, in a session named after the function (as Lambda does).
    assert first["identity"] == f"arn:aws:sts::{aws.account}:assumed-role/{function}-role/{function}"
    # One message at a time: the one warm process serves both, and its module code ran once.
    assert first["pid"] == second["pid"]
    assert sum(m.startswith("INIT") for m in aws.log_messages(group)) == 1
    assert aws.depth(f"{stack}-OrderQueue") == 0


def test_a_disabled_mapping_processes_nothing_until_enabled_again(cli, aws, stack, home):
    cli("--local", "--stack", stack, "up")
    function = f"{stack}-ProcessOrderFunction"
    uuid = aws.mapping(function)["UUID"]
    aws.client("lambda").update_event_source_mapping(UUID=uuid, Enabled=False)
    mapping_stopped(home, uuid)
    [published] = cli.json("--stack", stack, "publish-test")["published"]
    assert aws.item(f"{stack}-Orders", published["orderId"]) is None
    assert aws.depth(f"{stack}-OrderQueue") == 1
    assert aws.handler_records(f"/aws/lambda/{function}") == []
    cli("--local", "--stack", stack, "up")  # repairs the drift: the mapping is enabled again
    wait_for(lambda: aws.item(f"{stack}-Orders", published["orderId"]), 15, "the waiting order to be processed")


def test_a_message_sent_before_the_mapping_existed_is_processed(cli, aws, stack, home):
    cli("--local", "--stack", stack, "up")
    function = f"{stack}-ProcessOrderFunction"
    uuid = aws.mapping(function)["UUID"]
    aws.client("lambda").delete_event_source_mapping(UUID=uuid)
    mapping_stopped(home, uuid)
    [published] = cli.json("--stack", stack, "publish-test")["published"]
    assert aws.depth(f"{stack}-OrderQueue") == 1
    cli("--local", "--stack", stack, "up")
    wait_for(lambda: aws.item(f"{stack}-Orders", published["orderId"]), 15, "the early order to be processed")


@pytest.mark.slow
def test_two_stacks_side_by_side_never_see_each_others_orders(cli, aws, stack):
    other = f"{stack}b"
    try:
        cli("--local", "--stack", stack, "up")
        cli("--local", "--stack", other, "up")
        [mine] = cli.json("--stack", stack, "publish-test")["published"]
        [theirs] = cli.json("--stack", other, "publish-test")["published"]
        wait_for(lambda: aws.item(f"{stack}-Orders", mine["orderId"]), 15, "my order")
        wait_for(lambda: aws.item(f"{other}-Orders", theirs["orderId"]), 15, "their order")
        assert aws.item(f"{stack}-Orders", theirs["orderId"]) is None
        assert aws.item(f"{other}-Orders", mine["orderId"]) is None
    finally:
        cli("--local", "--stack", other, "down", "--yes", check=False)


def test_local_start_refuses_a_second_server_and_a_busy_port(cli, embedded, tmp_path):
    again = cli("local", "start", "--port", str(free_port()), check=False)
    assert again.returncode == 1
    assert "already running at" in again.stderr and "Traceback" not in again.stderr

    other = Cli(tmp_path / "elsewhere")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        result = other("local", "start", "--port", str(busy.getsockname()[1]), check=False)
    assert result.returncode == 1
    assert "is already in use" in result.stderr and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.slow
def test_a_stale_pid_file_is_explained_and_replaced(tmp_path):
    other = Cli(tmp_path / "stale")
    (tmp_path / "stale").mkdir()
    (tmp_path / "stale" / "local.json").write_text(
        json.dumps({"pid": 999999, "endpoint": "http://127.0.0.1:1", "port": 1})
    )
    result = other("--local", "status", check=False)
    assert result.returncode == 1 and "no longer running" in result.stderr
    started = other("local", "start", "--port", str(free_port()))
    try:
        assert "stale pid file" in started.stderr
        assert other("local", "status").returncode == 0
    finally:
        other("local", "stop")
    assert other("local", "status", check=False).returncode == 1


def test_the_embedded_aws_listens_on_loopback_only(embedded):
    port = int(embedded.rsplit(":", 1)[1])
    listeners = []
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state == "0A" and int(local.split(":")[1], 16) == port:
                listeners.append(local.split(":")[0])
    assert listeners == ["0100007F"]  # 127.0.0.1, and nothing else


def test_a_function_over_its_memory_size_is_killed_as_lambda_does(cli, aws, stack):
    cli("--local", "--stack", stack, "up")  # MemorySize 128
    function, lam = f"{stack}-ProcessOrderFunction", aws.client("lambda")
    hog = "def lambda_handler(event, context):\n    block = b'x' * (200 * 1024 * 1024)\n    return len(block)\n"
    lam.update_function_code(FunctionName=function, ZipFile=_zip(hog))

    killed = lam.invoke(FunctionName=function, Payload=b"{}", LogType="Tail")
    assert killed["FunctionError"] == "Unhandled"
    error = json.loads(killed["Payload"].read())
    assert error["errorType"] == "Runtime.ExitError"
    assert error["errorMessage"].endswith("Error: Runtime exited with error: signal: killed")
    tail = base64.b64decode(killed["LogResult"]).decode()
    assert "Memory Size: 128 MB\tMax Memory Used: 128 MB" in tail

    # A cold start that fills 200 MB can take longer than the stack's 3 s on a busy machine: give it time.
    lam.update_function_configuration(FunctionName=function, MemorySize=512, Timeout=60)
    fits = lam.invoke(FunctionName=function, Payload=b"{}", LogType="Tail")
    answer = json.loads(fits["Payload"].read())
    assert "FunctionError" not in fits and answer == 200 * 1024 * 1024, (answer, base64.b64decode(fits["LogResult"]))


@pytest.mark.parametrize("client", ["default", "orderflow"])
def test_demo_runs_the_whole_guide_and_exits_0(cli, client):
    # "orderflow": the Runtime API client that runs functions where awslambdaric does not install (macOS).
    forced = Cli(cli.env["ORDERFLOW_HOME"], env={CLIENT_VARIABLE: client}) if client != "default" else cli
    result = forced("demo", timeout=180)
    assert "demo passed" in result.stdout
    assert result.stderr == ""  # no warning or traceback from the embedded AWS reaches a newcomer's terminal
    assert result.stdout.count("✔ pass") == 6


def test_the_invoke_api_runs_the_deployed_handler(cli, aws, stack):
    cli("--local", "--stack", stack, "up")
    record = {
        "messageId": "direct-1",
        "receiptHandle": "none",
        "body": json.dumps(ORDER | {"orderId": "direct-1"}),
        "attributes": {"ApproximateReceiveCount": "1"},
        "eventSource": "aws:sqs",
    }
    response = aws.client("lambda").invoke(
        FunctionName=f"{stack}-ProcessOrderFunction", Payload=json.dumps({"Records": [record]}), LogType="Tail"
    )
    assert json.loads(response["Payload"].read()) == {"batchItemFailures": []}
    assert "FunctionError" not in response
    tail = base64.b64decode(response["LogResult"]).decode()
    assert "START RequestId:" in tail and '"outcome": "written"' in tail
    assert aws.item(f"{stack}-Orders", "direct-1")

    broken = aws.client("lambda").invoke(
        FunctionName=f"{stack}-ProcessOrderFunction", Payload=json.dumps({"Records": [{}]})
    )
    assert broken["FunctionError"] == "Unhandled"
    assert "messageId" in json.loads(broken["Payload"].read())["errorMessage"]


READER = """
import ctypes, os, json, subprocess
def lambda_handler(event, context):
    seen = {}
    libc = ctypes.CDLL(None, use_errno=True)
    for path in event["paths"]:
        seen["umount " + path] = libc.umount2(os.path.dirname(path).encode(), 2) == 0
        try:
            with open(path) as f:
                seen[path] = f.read()
        except OSError as e:
            seen[path] = type(e).__name__
    for path in event["writes"]:
        try:
            with open(path, "w") as f:
                f.write("owned")
            seen["write " + path] = "written"
        except OSError as e:
            seen["write " + path] = type(e).__name__
    seen["HOME"] = os.environ["HOME"]
    seen["credentials file"] = os.environ.get("AWS_SHARED_CREDENTIALS_FILE")
    subprocess.Popen(["sleep", "3600"], start_new_session=True)  # a detached child, meant to outlive everything
    return seen
"""


@pytest.mark.skipif(not Path("/usr/bin/unshare").exists(), reason="no unshare: functions run with a scrubbed env only")
def test_a_function_cannot_read_the_callers_credentials_or_orderflows_state(tmp_path_factory):
    """The daemon runs as the caller; its functions do too. A hostile handler that unmounts what it can, reads the
    caller's secrets and orderflow's state folder, writes the caller's home and leaves a detached child finds nothing,
    writes nothing, and its child ends with `local stop`."""
    import psutil

    home = tmp_path_factory.mktemp("caller-home")
    (home / ".aws").mkdir()
    (home / ".aws" / "credentials").write_text("[default]\naws_secret_access_key = caller-secret\n")
    (home / ".netrc").write_text("machine example.com password caller-secret\n")
    state = tmp_path_factory.mktemp("state")
    caller = Cli(state, env={"HOME": str(home)})
    caller.json("local", "start", "--port", str(free_port()))
    sleepers_before = {p.pid for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", "3600"]}
    try:
        caller("--local", "up")
        endpoint = caller.json("local", "status")["endpoint"]
        lam = Aws(endpoint).client("lambda")
        lam.update_function_code(FunctionName="ProcessOrderFunction", ZipFile=_zip(READER))
        paths = [str(home / ".aws" / "credentials"), str(home / ".netrc"), str(state / "local.log")]
        writes = [str(home / ".bashrc"), "/var/tmp/orderflow-owned", str(state / "owned")]
        event = {"paths": paths, "writes": writes}
        invoked = lam.invoke(FunctionName="ProcessOrderFunction", Payload=json.dumps(event))
        answer = json.loads(invoked["Payload"].read())
        assert "caller-secret" not in json.dumps(answer)
        assert answer[paths[0]] == answer[paths[1]] == "FileNotFoundError"  # the whole home is out of its view
        assert answer[paths[2]] == "FileNotFoundError"  # orderflow's state folder: the daemon's own log
        assert not any(answer[f"umount {path}"] for path in paths)
        assert all(answer[f"write {path}"] != "written" for path in writes), answer
        assert not (home / ".bashrc").exists() and not (state / "owned").exists()
        assert not Path("/var/tmp/orderflow-owned").exists()
        assert answer["HOME"] != str(home) and answer["credentials file"] == "/dev/null"
    finally:
        caller("local", "stop", check=False)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        left = {p.pid for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", "3600"]}
        if not left - sleepers_before:
            break
        time.sleep(0.1)
    assert not left - sleepers_before, "the function's detached child outlived `local stop`"
