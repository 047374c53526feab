"""The request context AWS supplies with every request, built in one place, pure.

The keys and their values are those of "AWS global condition context keys"
(https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_policies_condition-keys.html):
- of the principal: aws:PrincipalArn (a session's role ARN, not the session's), aws:PrincipalAccount,
  aws:PrincipalType, aws:userid, aws:username (IAM users only), aws:PrincipalTag/* (the user's or role's tags),
  aws:PrincipalIsAWSService and aws:PrincipalServiceName (a service's own requests);
- of the request: aws:RequestedRegion, aws:SecureTransport, aws:CurrentTime (ISO 8601, UTC), aws:EpochTime;
- of the resource: aws:ResourceAccount, aws:ResourceTag/* (its tags);
- of a service acting for a resource: aws:SourceArn, aws:SourceAccount.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone

from orderflow.arns import parse_arn
from orderflow.iam.evaluation import Principal

# Keys verify cannot know when it judges a policy on AWS from the outside (the caller's organization, the network
# path a request takes): a statement that depends on one is "cannot decide", never a red.
UNDECIDABLE = frozenset(
    k.lower()
    for k in (
        "aws:PrincipalOrgID",
        "aws:PrincipalOrgPaths",
        "aws:ResourceOrgID",
        "aws:ResourceOrgPaths",
        "aws:SourceOrgID",
        "aws:SourceOrgPaths",
        "aws:SourceVpce",
        "aws:SourceVpc",
        "aws:VpcSourceIp",
        "aws:SourceIp",
    )
)


@dataclass(frozen=True)
class Identity:
    """The IAM identity behind a request: a user (`user_id` AIDA…), or a role session (`role_id` AROA… and the
    session's name). `tags` are the user's or the role's."""

    principal: Principal
    kind: str  # "User" | "AssumedRole"
    unique_id: str
    name: str
    tags: Mapping[str, str] = field(default_factory=dict)


def _now(epoch: float) -> dict[str, str]:
    moment = datetime.fromtimestamp(epoch, timezone.utc).replace(microsecond=0)
    return {"aws:CurrentTime": moment.strftime("%Y-%m-%dT%H:%M:%SZ"), "aws:EpochTime": str(int(epoch))}


def caller_context(
    identity: Identity,
    region: str,
    resource_arn: str,
    resource_tags: Mapping[str, str] | None = None,
    secure: bool = True,
    epoch: float | None = None,
) -> dict[str, str]:
    """The context of an IAM identity's request."""
    principal = identity.principal
    context = {
        "aws:PrincipalArn": principal.role_arn or principal.id,
        "aws:PrincipalAccount": principal.account or "",
        "aws:PrincipalType": identity.kind,
        "aws:userid": identity.unique_id,
        "aws:PrincipalIsAWSService": "false",
        "aws:RequestedRegion": region,
        "aws:SecureTransport": "true" if secure else "false",
        **_now(time.time() if epoch is None else epoch),
        **{f"aws:PrincipalTag/{k}": v for k, v in identity.tags.items()},
        **_resource(resource_arn, resource_tags),
    }
    if identity.kind == "User":
        context["aws:username"] = identity.name
    return context


def _resource(resource_arn: str, tags: Mapping[str, str] | None) -> dict[str, str]:
    found = {f"aws:ResourceTag/{k}": v for k, v in (tags or {}).items()}
    account = parse_arn(resource_arn).account if resource_arn.startswith("arn:") else ""
    if account:
        found["aws:ResourceAccount"] = account
    return found


def service_context(
    service: Principal, source_arn: str, region: str, resource_arn: str, epoch: float | None = None
) -> dict[str, str]:
    """The context of a service's request on a customer's behalf (SNS delivering to a queue): the service
    principal, the resource it acts for, over TLS."""
    return {
        "aws:SourceArn": source_arn,
        "aws:SourceAccount": parse_arn(source_arn).account,
        "aws:PrincipalIsAWSService": "true",
        "aws:PrincipalServiceName": service.id,
        "aws:RequestedRegion": region,
        "aws:SecureTransport": "true",
        **_now(time.time() if epoch is None else epoch),
        **_resource(resource_arn, None),
    }
