"""ARNs of a stack's resources, derived from partition, region and account: pure, so plans need no lookups."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Arns:
    partition: str
    region: str
    account: str

    def table(self, name: str) -> str:
        return f"arn:{self.partition}:dynamodb:{self.region}:{self.account}:table/{name}"

    def topic(self, name: str) -> str:
        return f"arn:{self.partition}:sns:{self.region}:{self.account}:{name}"

    def queue(self, name: str) -> str:
        return f"arn:{self.partition}:sqs:{self.region}:{self.account}:{name}"

    def role(self, name: str) -> str:
        return f"arn:{self.partition}:iam::{self.account}:role/{name}"

    def function(self, name: str) -> str:
        return f"arn:{self.partition}:lambda:{self.region}:{self.account}:function:{name}"

    def log_group(self, name: str) -> str:
        """The log group itself (the form tagging APIs take)."""
        return f"arn:{self.partition}:logs:{self.region}:{self.account}:log-group:{name}"

    def log_streams(self, name: str) -> str:
        """Every stream of the log group (the form IAM needs for CreateLogStream / PutLogEvents)."""
        return f"{self.log_group(name)}:*"

    def alarm(self, name: str) -> str:
        return f"arn:{self.partition}:cloudwatch:{self.region}:{self.account}:alarm:{name}"


@dataclass(frozen=True)
class Arn:
    """An ARN's six colon-separated parts (the resource keeps its own colons: `function:name`, `log-group:/g:*`)."""

    partition: str
    service: str
    region: str
    account: str
    resource: str

    @property
    def name(self) -> str:
        """The resource's own name: the last part of `type:name` / `type/name`, or the resource itself."""
        for separator in (":", "/"):
            if separator in self.resource:
                return self.resource.split(separator, 1)[1]
        return self.resource


def parse_arn(arn: str) -> Arn:
    """The parts of an ARN; ValueError for anything that is not one."""
    parts = str(arn).split(":", 5)
    if len(parts) != 6 or parts[0] != "arn":
        raise ValueError(f"not an ARN: {arn!r}")
    return Arn(*parts[1:])
