"""Session and clients for one AWS target (real AWS, or any endpoint such as the embedded AWS).

The region comes from the session (flag, AWS_REGION, profile); the account from STS. Nothing is hard-coded.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
from collections.abc import Callable, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit

import boto3
import botocore.exceptions
import botocore.parsers
from botocore.config import Config

from orderflow.arns import Arns
from orderflow.errors import (
    AccessDeniedError,
    AwsError,
    ConfigError,
    CredentialsError,
    EndpointError,
    NotConfigured,
    NotFoundError,
    TimedOut,
)

RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=70)
# The embedded AWS is on this machine: an answer that takes seconds will not come (read_timeout still covers a
# 20 s long poll).
LOCAL_CONFIG = Config(retries={"mode": "standard", "max_attempts": 2}, connect_timeout=2, read_timeout=25)


class NotAnAwsResponse(AwsError):
    """What answered is not an AWS API (a web page where XML or JSON should be)."""


def refuse_a_web_page(where: str, response_dict: dict[str, Any], **_kwargs: Any) -> None:
    """No service orderflow calls answers with a web page: an HTML answer (a proxy's error or login page, an
    emulator's page for an operation it lacks) would parse as an empty success, failing later as a KeyError, or as
    an error coded "500" whose message is HTML. It is refused here, in one line naming who answered."""
    body = bytes(response_dict.get("body") or b"")
    if not body.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html")):
        return
    title = re.search(rb"<title>([^<]{1,80})</title>", body, re.IGNORECASE)
    page = title.group(1).decode(errors="replace").strip() if title else "no title"
    raise NotAnAwsResponse(
        f"{where} answered with a web page (HTTP {response_dict.get('status_code')}: {page!r}), not an AWS response: "
        "is the endpoint an AWS API, and nothing (a proxy, a login page) in the way?"
    )


class Aws:
    """One session against one endpoint: caches clients and the caller's identity."""

    def __init__(self, session: boto3.Session, endpoint_url: str | None = None, config: Config = RETRY_CONFIG) -> None:
        self.session = session
        self.endpoint_url = endpoint_url
        self.config = config
        self._clients: dict[str, Any] = {}
        self._account: str | None = None
        self._caller_arn: str | None = None
        if not session.region_name:
            raise NotConfigured(
                "No AWS region configured: pass --region, set AWS_REGION, or set a region in your AWS profile"
            )
        session.events.register("before-parse", functools.partial(refuse_a_web_page, endpoint_url or "AWS"))

    @property
    def region(self) -> str:
        return self.session.region_name

    def client(self, service: str) -> Any:
        if service not in self._clients:
            self._clients[service] = self.session.client(service, endpoint_url=self.endpoint_url, config=self.config)
        return self._clients[service]

    def register(self, event: str, handler: Callable[..., Any]) -> None:
        """Hook a botocore event (e.g. 'before-call') on this session's current and future clients."""
        self.session.events.register(event, handler)
        for client in self._clients.values():
            client.meta.events.register(event, handler)

    @property
    def account(self) -> str:
        if self._account is None:
            self._identify()
        return str(self._account)

    @property
    def caller_arn(self) -> str:
        """Who signs the calls: a user's, a role session's or the root's ARN (STS GetCallerIdentity)."""
        if self._caller_arn is None:
            self._identify()
        return str(self._caller_arn)

    def _identify(self) -> None:
        identity = self.client("sts").get_caller_identity()
        self._account, self._caller_arn = identity["Account"], identity["Arn"]

    @property
    def arns(self) -> Arns:
        # From the region, whatever the endpoint: an endpoint that stands in for aws-cn or aws-us-gov uses their ARNs.
        try:
            partition = self.session.get_partition_for_region(self.region)
        except botocore.exceptions.UnknownRegionError:
            partition = "aws"  # a region only some endpoint knows; its ARNs follow the commercial partition
        return Arns(partition=partition, region=self.region, account=self.account)


def connect(
    region: str | None = None,
    profile: str | None = None,
    endpoint_url: str | None = None,
    credentials: dict[str, str] | None = None,
    config: Config = RETRY_CONFIG,
) -> Aws:
    """Open a session. `credentials` is only for endpoints that accept any key (the embedded AWS). The region is the
    flag's, else AWS_REGION's (as the AWS CLI v2 reads it; boto3 alone reads only AWS_DEFAULT_REGION), else boto3's
    (AWS_DEFAULT_REGION, then the profile)."""
    if endpoint_url is not None:
        check_endpoint(endpoint_url)
    with aws_errors(endpoint_url):
        region = region or os.environ.get("AWS_REGION") or None
        session = boto3.Session(profile_name=profile, region_name=region, **(credentials or {}))
        check_region(session.region_name)
        return Aws(session, endpoint_url, config)


# Every AWS region's name: two letters, a direction or name, a number (us-east-1, ap-southeast-4, us-gov-west-1).
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d+$")


def check_region(region: str | None) -> None:
    """A region name as AWS spells them; anything else (a typo, a misplaced argument) is one line, not a call to
    an endpoint that does not exist."""
    if region and not _REGION.match(region):
        raise ConfigError(f"region {region!r} is not an AWS region name (like eu-west-2 or us-east-1)")


def check_endpoint(url: str) -> None:
    """An endpoint botocore can use: http(s)://host[:port][/path]; else one line (botocore raises ValueError)."""
    try:
        parsed = urlsplit(url)
        parsed.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as e:
        raise ConfigError(f"--endpoint-url {url!r} is not a URL ({e})") from None
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ConfigError(f"--endpoint-url {url!r} is not a URL like http://127.0.0.1:4599 or https://host")


def error_code(error: botocore.exceptions.ClientError) -> str:
    return error.response.get("Error", {}).get("Code", "")


def is_not_found(error: botocore.exceptions.ClientError) -> bool:
    code = error_code(error)
    return code in {
        "ResourceNotFoundException",
        "ResourceNotFound",
        "NotFound",
        "NotFoundException",
        "NoSuchEntity",
        "AWS.SimpleQueueService.NonExistentQueue",
        "QueueDoesNotExist",
    }


T = TypeVar("T")


def or_none(read: Callable[[], T]) -> T | None:
    """What `read` returns, or None when what it reads does not exist: the one place "already gone" is decided."""
    try:
        return read()
    except botocore.exceptions.ClientError as e:
        if is_not_found(e):
            return None
        raise


ACCESS_DENIED_CODES = {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"}


def is_access_denied(error: botocore.exceptions.ClientError) -> bool:
    """Refused by IAM, in whichever code the service uses for it."""
    return error_code(error) in ACCESS_DENIED_CODES


@contextlib.contextmanager
def aws_errors(endpoint_url: str | None = None) -> Iterator[None]:
    """Turn botocore's exceptions into one-line, actionable OrderflowErrors."""
    try:
        yield
    except (botocore.exceptions.NoCredentialsError, botocore.exceptions.PartialCredentialsError) as e:
        raise CredentialsError(
            "No AWS credentials found: run `aws configure`, set AWS_PROFILE or the AWS_ACCESS_KEY_ID/"
            "AWS_SECRET_ACCESS_KEY variables — or use --local to run against the embedded AWS"
        ) from e
    except botocore.exceptions.ProfileNotFound as e:
        raise CredentialsError(f"{e}: check --profile / AWS_PROFILE against ~/.aws/config") from e
    except botocore.exceptions.NoRegionError as e:
        raise NotConfigured("No AWS region configured: pass --region or set AWS_REGION") from e
    except (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectionClosedError) as e:
        where = endpoint_url or "AWS"
        raise EndpointError(f"Cannot reach {where}: {e}. Is the endpoint running and the network up?") from e
    except botocore.exceptions.ClientError as e:
        code = error_code(e)
        message = e.response.get("Error", {}).get("Message", str(e))
        operation = getattr(e, "operation_name", "call")
        if code in ACCESS_DENIED_CODES:
            raise AccessDeniedError(f"Access denied for {operation}: {message}") from e
        if code in {
            "ExpiredToken",
            "ExpiredTokenException",
            "InvalidClientTokenId",
            "UnrecognizedClientException",
            "SignatureDoesNotMatch",
        }:
            raise CredentialsError(f"Your AWS credentials were rejected ({code}): {message}") from e
        kind = NotFoundError if is_not_found(e) else AwsError
        raise kind(f"AWS {operation} failed: {code}: {message}") from e
    except botocore.exceptions.WaiterError as e:
        raise TimedOut(f"Gave up waiting: {e}") from e
    except (botocore.exceptions.ReadTimeoutError, botocore.exceptions.ConnectTimeoutError) as e:
        where = endpoint_url or "AWS"
        raise EndpointError(f"{where} did not answer in time: {e}. Is it overloaded, or the network slow?") from e
    except botocore.exceptions.BotoCoreError as e:
        raise AwsError(f"AWS client error: {' '.join(str(e).split())}") from e  # one line (some span several)
    except botocore.parsers.ResponseParserError as e:
        # Not an AWS answer at all (garbage where XML or JSON should be): one line, with the start of the complaint.
        first = str(e).splitlines()[0]
        where = endpoint_url or "the endpoint"
        raise AwsError(f"{where} answered with something that is not an AWS response: {first}") from e
