"""StackConfig: every name, tag and setting of one orderflow stack, derived from the stack name.

Pure: nothing here talks to AWS. The `default` stack uses the seed guide's names exactly; any other stack `S`
prefixes every name with `S-` so several stacks live side by side in one account.
"""

from __future__ import annotations

import re
from dataclasses import Field, dataclass, field, fields
from typing import Any

from orderflow.errors import ConfigError

DEFAULT_STACK = "default"
STACK_TAG = "orderflow:stack"
# CloudFormation tags what it creates with its stack's name (CloudFormation Template Reference, "Resource tag").
CLOUDFORMATION_STACK_TAG = "aws:cloudformation:stack-name"

SUPPORTED_RUNTIMES = ("python3.9", "python3.10", "python3.11", "python3.12", "python3.13", "python3.14")
# AWS deprecated these; creating them is (or soon will be) blocked, so we warn but still accept them.
DEPRECATED_RUNTIMES = ("python3.9", "python3.10")
ARCHITECTURES = ("x86_64", "arm64")

# ScalingConfig.MaximumConcurrency of an SQS trigger (Lambda API Reference, ScalingConfig).
MAXIMUM_CONCURRENCY = (2, 1000)

# AWS recommends a visibility timeout of at least 6x the function timeout, so a slow batch is not handed to a
# second invocation while the first is still working on it.
VISIBILITY_TO_TIMEOUT_FACTOR = 6

# SNS accepts any address it can mail; this only refuses what cannot be one (a typo'd flag value, a missing @, a
# space, a newline or another control character). Matched whole (re.fullmatch: `$` alone lets a trailing newline by).
EMAIL_PATTERN = r"|[^@\s\x00-\x1f\x7f]+@[^@\s\x00-\x1f\x7f]+\.[^@\s\x00-\x1f\x7f]+"

_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,31}$")


def _setting(default: object, flag: str, help: str, **rule: object) -> Any:
    """A user setting: its `up` flag (and ORDERFLOW_<FLAG> variable, and key in orderflow.toml) and its rule —
    `choices`, or `min`/`max` — from which the flag, the file's validation and the help are all generated."""
    return field(default=default, metadata={"flag": flag, "help": help, **rule})


@dataclass(frozen=True)
class StackSettings:
    runtime: str = _setting("python3.13", "--runtime", "Lambda runtime.", choices=SUPPORTED_RUNTIMES)
    architecture: str = _setting("x86_64", "--architecture", "Lambda architecture.", choices=ARCHITECTURES)
    function_timeout: int = _setting(3, "--function-timeout", "Lambda timeout, seconds.", min=1, max=900)
    memory_size: int = _setting(128, "--memory", "Lambda memory, MB.", min=128, max=10240)
    visibility_timeout: int = _setting(
        30, "--visibility-timeout", "Queue visibility timeout, seconds (>= 6 x function timeout).", min=0, max=43200
    )
    max_receive_count: int = _setting(
        3, "--max-receive-count", "Receives before a message moves to the DLQ.", min=1, max=1000
    )
    batch_size: int = _setting(10, "--batch-size", "Messages per batch (above 10 needs a window).", min=1, max=10000)
    batching_window: int = _setting(0, "--batching-window", "Seconds to gather a batch.", min=0, max=300)
    max_concurrency: int = _setting(
        0,
        "--max-concurrency",
        "The trigger's maximum concurrent batches (2-1000; 0: none, up to 1,000). Cap here, not with reserved "
        "concurrency: a throttled batch counts towards the DLQ.",
        min=0,
        max=MAXIMUM_CONCURRENCY[1],
    )
    # None: not asked for (an address orderflow subscribed stays subscribed); "": none (it is unsubscribed).
    alarm_email: str | None = _setting(
        None,
        "--alarm-email",
        "Address the DLQ alarm mails (SNS asks it to confirm); empty: none; not given: keep the one subscribed.",
        pattern=EMAIL_PATTERN,
        rule="an email address, or empty for none",
    )
    dlq_retention_seconds: int = 14 * 24 * 3600
    log_retention_days: int = 14

    def validate(self) -> list[str]:
        """Raise ConfigError for a setting AWS would reject or that breaks the pipeline; return warnings."""
        if self.runtime not in SUPPORTED_RUNTIMES:
            raise ConfigError(
                f"runtime {self.runtime!r} is not supported; choose one of {', '.join(SUPPORTED_RUNTIMES)}"
            )
        if self.architecture not in ARCHITECTURES:
            raise ConfigError(f"architecture {self.architecture!r} is not supported; choose x86_64 or arm64")
        if not 1 <= self.function_timeout <= 900:
            raise ConfigError("function timeout must be between 1 and 900 seconds")
        if not 128 <= self.memory_size <= 10240:
            raise ConfigError("function memory must be between 128 and 10240 MB")
        if not 0 <= self.visibility_timeout <= 43200:
            raise ConfigError("queue visibility timeout must be between 0 and 43200 seconds")
        minimum = VISIBILITY_TO_TIMEOUT_FACTOR * self.function_timeout + self.batching_window
        if self.visibility_timeout < minimum:
            raise ConfigError(
                f"queue visibility timeout {self.visibility_timeout}s is below {VISIBILITY_TO_TIMEOUT_FACTOR} x the "
                f"function timeout ({self.function_timeout}s) + batching window ({self.batching_window}s) "
                f"= {minimum}s; "
                "a batch could be redelivered while it is still being processed. Raise --visibility-timeout or "
                "lower --function-timeout"
            )
        if not 1 <= self.max_receive_count <= 1000:
            raise ConfigError("maxReceiveCount must be between 1 and 1000")
        if not 0 <= self.batching_window <= 300:
            raise ConfigError("batching window must be between 0 and 300 seconds")
        if not 1 <= self.batch_size <= 10000:
            raise ConfigError("batch size must be between 1 and 10000")
        if self.alarm_email is not None and not re.fullmatch(EMAIL_PATTERN, self.alarm_email):
            raise ConfigError(f"alarm email {self.alarm_email!r} is not an email address")
        if self.max_concurrency and not MAXIMUM_CONCURRENCY[0] <= self.max_concurrency <= MAXIMUM_CONCURRENCY[1]:
            raise ConfigError(
                f"maximum concurrency must be 0 (none) or between {MAXIMUM_CONCURRENCY[0]} and "
                f"{MAXIMUM_CONCURRENCY[1]} (AWS's range for ScalingConfig.MaximumConcurrency)"
            )
        if self.batch_size > 10 and self.batching_window < 1:
            raise ConfigError("a batch size above 10 needs a batching window of at least 1 second (AWS rule)")
        warnings = []
        if self.runtime in DEPRECATED_RUNTIMES:
            warnings.append(
                f"runtime {self.runtime} is deprecated by AWS Lambda; new functions on it will be blocked. "
                "The default, python3.13, is supported"
            )
        return warnings


def user_settings() -> list[Field[Any]]:
    """The settings a user sets (by flag, variable or orderflow.toml), in the order `up --help` lists them."""
    return [f for f in fields(StackSettings) if "flag" in f.metadata]


def setting_rule(setting: Field[Any]) -> str:
    rule = setting.metadata
    if "choices" in rule:
        return f"one of {', '.join(rule['choices'])}"
    if "pattern" in rule:
        return str(rule["rule"])
    return f"an integer from {rule['min']} to {rule['max']}"


def setting_problem(setting: Field[Any], value: Any) -> str | None:
    """Why `value` cannot be this setting, or None."""
    rule = setting.metadata
    if "choices" in rule:
        return None if isinstance(value, str) and value in rule["choices"] else f"must be {setting_rule(setting)}"
    if "pattern" in rule:
        matches = isinstance(value, str) and re.fullmatch(rule["pattern"], value)
        return None if matches else f"must be {setting_rule(setting)}"
    if isinstance(value, bool) or not isinstance(value, int) or not rule["min"] <= value <= rule["max"]:
        return f"must be {setting_rule(setting)}"
    return None


# The resources a stack orderflow did not build is resolved by (from a CloudFormation stack, or named in
# orderflow.toml's [stacks.<name>.resources]): the key, and the name it has in a stack orderflow builds.
RESOURCE_KEYS = ("table", "topic", "queue", "dlq", "function", "role", "log_group", "alerts_topic", "dlq_alarm")
REQUIRED_RESOURCE_KEYS = ("table", "topic", "queue", "function")


@dataclass(frozen=True)
class StackConfig:
    name: str = DEFAULT_STACK
    settings: StackSettings = field(default_factory=StackSettings)
    # A stack orderflow did not build: its resources' names as resolved (key -> name), and who manages it (a
    # CloudFormation stack, or the settings file). Such a stack is proven, never changed: `up` and `down` refuse it.
    names: tuple[tuple[str, str], ...] = ()
    managed_by: str | None = None

    def __post_init__(self) -> None:
        if not _STACK_NAME.match(self.name):
            raise ConfigError(
                f"stack name {self.name!r} is invalid: use 1-32 letters, digits or '-', starting with a letter"
            )

    def _named(self, base: str, key: str = "") -> str:
        resolved = dict(self.names).get(key)
        if resolved:
            return resolved
        return base if self.name == DEFAULT_STACK else f"{self.name}-{base}"

    @property
    def table_name(self) -> str:
        return self._named("Orders", "table")

    @property
    def topic_name(self) -> str:
        return self._named("OrderTopic", "topic")

    @property
    def queue_name(self) -> str:
        return self._named("OrderQueue", "queue")

    @property
    def dlq_name(self) -> str:
        return self._named("OrderQueueDLQ", "dlq")

    @property
    def function_name(self) -> str:
        return self._named("ProcessOrderFunction", "function")

    @property
    def alerts_topic_name(self) -> str:
        return self._named("OrderAlerts", "alerts_topic")

    @property
    def dlq_alarm_name(self) -> str:
        return self._named("OrderQueueDLQ-NewLetters", "dlq_alarm")

    @property
    def role_name(self) -> str:
        return dict(self.names).get("role") or f"{self.function_name}-role"

    @property
    def log_group_name(self) -> str:
        # Lambda writes to /aws/lambda/<function> unless the function says otherwise
        return dict(self.names).get("log_group") or f"/aws/lambda/{self.function_name}"

    @property
    def record_name(self) -> str:
        """What the stack's publish record is kept under: its name; for a stack managed elsewhere, the topic its
        orders go to as well (several such stacks share the stack name `default`)."""
        return self.name if self.managed_by is None else f"{self.name}@{self.topic_name}"

    @property
    def tags(self) -> dict[str, str]:
        return {STACK_TAG: self.name}

    def owns(self, tags: dict[str, str] | None) -> bool:
        """Ours by tag; a stack managed elsewhere is made of what was resolved from it, whatever its tags."""
        return self.managed_by is not None or (tags or {}).get(STACK_TAG) == self.name


def tag_list(tags: dict[str, str]) -> list[dict[str, str]]:
    """Tags in the [{'Key':…, 'Value':…}] shape that DynamoDB and IAM want."""
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def tag_dict(tags: list[dict[str, str]] | None) -> dict[str, str]:
    return {t["Key"]: t["Value"] for t in tags or []}
