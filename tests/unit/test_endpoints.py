"""orderflow against any AWS-compatible endpoint: a plain moto server (no IAM simulator, HTML pages for what it
lacks), a web page where an AWS answer should be, and every botocore exception a user can meet — each one line and a
non-zero exit, never a traceback."""

from __future__ import annotations

import http.server
import json
import threading
import urllib.request
from collections.abc import Iterator

import botocore.exceptions
import botocore.parsers
import pytest
from click.testing import CliRunner

from orderflow.aws import aws_errors, connect
from orderflow.cli import cli
from orderflow.errors import AwsError, EndpointError, OrderflowError, TimedOut

REGION = "eu-north-1"


@pytest.fixture
def keys(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "plain")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "plain")
    monkeypatch.setenv("AWS_REGION", REGION)
    monkeypatch.setenv("ORDERFLOW_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def plain_moto() -> Iterator[str]:
    """moto's own server, as `moto_server` runs it: none of the embedded AWS's additions."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    try:
        yield endpoint
    finally:
        # It shares this process's moto: leave nothing behind for the next test.
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST")).close()
        server.stop()


def test_up_then_down_on_a_plain_moto_server_goes_on_without_the_permission_check(keys, plain_moto):
    up = CliRunner().invoke(cli, ["--endpoint-url", plain_moto, "--json", "up"])
    assert up.exit_code == 0, up.output
    document = json.loads(up.stdout)
    assert document["ok"] is True and {r["outcome"] for r in document["results"]} == {"created"}
    # The simulator's HTML 500 means the check cannot be made: up goes on, as where IAM will not say (README).
    assert "Traceback" not in up.output
    down = CliRunner().invoke(cli, ["--endpoint-url", plain_moto, "down", "--yes"])
    assert down.exit_code == 0, down.output


class _WebPage(http.server.BaseHTTPRequestHandler):
    """Answers every request with a web page: a captive portal, a proxy's error page, the wrong port."""

    status = 200

    def _answer(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = b"<!doctype html><title>Welcome to the network</title>"
        self.send_response(self.status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _answer

    def log_message(self, *_args) -> None:
        pass


@pytest.fixture(params=[200, 500], ids=["HTTP-200", "HTTP-500"])
def web_page(request) -> Iterator[str]:
    handler = type("Page", (_WebPage,), {"status": request.param})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("command", [["status"], ["up"]])
def test_a_web_page_where_aws_should_answer_is_one_line(keys, web_page, command):
    result = CliRunner().invoke(cli, ["--endpoint-url", web_page, *command])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
    [line] = [line for line in result.stderr.splitlines() if line.strip()]
    assert line.startswith(f"error: {web_page} answered with a web page (HTTP ") and "'Welcome to the network'" in line


def _parser_error() -> Exception:
    return botocore.parsers.ResponseParserError("Unable to parse response, invalid XML received:\nb'<html>'")


@pytest.mark.parametrize(
    "raised, kind, words",
    [
        (botocore.exceptions.ReadTimeoutError(endpoint_url="http://x"), EndpointError, "did not answer in time"),
        (botocore.exceptions.ConnectTimeoutError(endpoint_url="http://x"), EndpointError, "did not answer in time"),
        (botocore.exceptions.ConnectionClosedError(endpoint_url="http://x"), EndpointError, "Cannot reach"),
        (botocore.exceptions.EndpointConnectionError(endpoint_url="http://x"), EndpointError, "Cannot reach"),
        (botocore.exceptions.WaiterError("TableExists", "Max attempts exceeded", {}), TimedOut, "Gave up waiting"),
        (_parser_error(), AwsError, "http://endpoint.example answered with something that is not an AWS response"),
        (botocore.exceptions.NoRegionError(), OrderflowError, "No AWS region"),
        (botocore.exceptions.ParamValidationError(report="Invalid length"), AwsError, "failed: Invalid length"),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, Exception) else None,
)
def test_every_client_exception_a_user_can_meet_is_one_orderflow_line(raised, kind, words):
    with pytest.raises(kind) as caught, aws_errors("http://endpoint.example"):
        raise raised
    message = str(caught.value)
    assert words in message and "\n" not in message, message


def test_a_web_page_answer_is_refused_by_every_client_of_a_session(web_page, keys):
    aws = connect(REGION, endpoint_url=web_page)
    for service, read in (("dynamodb", "list_tables"), ("sqs", "list_queues"), ("iam", "list_roles")):
        with pytest.raises(AwsError, match=f"^{web_page} answered with a web page"), aws_errors(web_page):
            getattr(aws.client(service), read)()
