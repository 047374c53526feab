"""`orderflow export`: the stack as infrastructure as code, written to a directory beside its code package.

- cloudformation: `template.json` and `function.zip` (the same reproducible zip `up` uploads). The handler is too
  large for an inline `ZipFile` (4,096 characters), so the template takes the package's S3 location as parameters;
  `--upload-to BUCKET` uploads it (as `aws cloudformation package` does) and makes them the defaults.
- sam: `template.json` with the function's `CodeUri` (`function.zip`, or its S3 address once uploaded).
- terraform: `main.tf` and the handler's source in `lambda_code/` (an `archive_file` zips it).

Existing files are never overwritten unless asked (`--force`): an export is often edited by hand afterwards.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orderflow.aws import Aws
from orderflow.errors import ConfigError, FileProblem, ManagedElsewhere
from orderflow.iac import cloudformation, terraform
from orderflow.iac.model import StackModel, stack_model
from orderflow.provision.package import LAMBDA_CODE_DIR
from orderflow.stack import StackConfig

FORMATS = ("cloudformation", "sam", "terraform")
TEMPLATE = "template.json"
PACKAGE = "function.zip"
TERRAFORM = "main.tf"
CODE_DIR = "lambda_code"


@dataclass
class Exported:
    format: str
    directory: Path
    files: list[Path] = field(default_factory=list)
    code_location: str | None = None  # s3://bucket/key once uploaded

    def to_document(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "directory": str(self.directory),
            "files": [str(f) for f in self.files],
            "code": self.code_location,
        }


def code_key(model: StackModel) -> str:
    """Where the package goes in the bucket: named by its digest, so new code is a new key and the template
    changes with it (CloudFormation updates a function only when its Code property changes)."""
    digest = base64.b64decode(model.package.code_sha256).hex()[:16]
    return f"orderflow/{model.config.name}/function-{digest}.zip"


def upload_package(aws: Aws, model: StackModel, bucket: str) -> str:
    """Put the code package in `bucket` (the one S3 call orderflow makes); returns its key."""
    key = code_key(model)
    aws.client("s3").put_object(Bucket=bucket, Key=key, Body=model.package.zip_bytes)
    return key


def planned_files(fmt: str) -> list[str]:
    if fmt == "terraform":
        return [TERRAFORM, CODE_DIR]
    return [TEMPLATE, PACKAGE]


def check_destination(directory: Path, fmt: str, force: bool) -> None:
    """Before anything is written or uploaded: the directory can hold the export, and nothing would be lost."""
    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}")
    if directory.exists() and not directory.is_dir():
        raise FileProblem(f"{directory} is a file, not a directory (--output)")
    existing = [name for name in planned_files(fmt) if (directory / name).exists()]
    if existing and not force:
        raise FileProblem(
            f"{directory / existing[0]} already exists; orderflow does not overwrite an export (it may have been "
            "edited): choose another --output or pass --force"
        )


def write(model: StackModel, fmt: str, directory: Path, bucket: str = "", key: str = "") -> Exported:
    """Write the export of `model` in `fmt` to `directory` (the package is at s3://bucket/key when given)."""
    result = Exported(fmt, directory, code_location=f"s3://{bucket}/{key}" if bucket else None)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        if fmt == "terraform":
            result.files.append(_write_text(directory / TERRAFORM, terraform.render(model, CODE_DIR)))
            code = directory / CODE_DIR
            code.mkdir(exist_ok=True)
            for source in sorted(LAMBDA_CODE_DIR.glob("*.py")):
                if source.name != "__init__.py":  # as in the package `up` builds
                    result.files.append(_write_text(code / source.name, source.read_text(encoding="utf-8")))
            return result
        if fmt == "sam":
            document = cloudformation.sam_template(model, result.code_location or PACKAGE)
        else:
            document = cloudformation.template(model, bucket, key)
        result.files.append(_write_text(directory / TEMPLATE, json.dumps(document, indent=2) + "\n"))
        package = directory / PACKAGE
        package.write_bytes(model.package.zip_bytes)
        result.files.append(package)
    except OSError as e:
        raise FileProblem(f"Cannot write the export to {directory}: {e.strerror or e}") from e
    return result


def _write_text(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def export(
    config: StackConfig,
    fmt: str,
    directory: Path,
    force: bool = False,
    upload_to: str | None = None,
    connect: Callable[[], Aws] | None = None,
) -> Exported:
    """Check the destination, build the model, upload the package if asked, then write the files."""
    if config.managed_by:
        raise ManagedElsewhere(config.managed_by, "export")
    check_destination(directory, fmt, force)
    model = stack_model(config)
    bucket, key = "", ""
    if upload_to:
        if fmt == "terraform":
            raise ConfigError("--upload-to is for the cloudformation and sam formats (Terraform zips the code itself)")
        if connect is None:
            raise ConfigError("--upload-to needs an AWS connection")
        bucket, key = upload_to, upload_package(connect(), model, upload_to)
    return write(model, fmt, directory, bucket, key)


# How a stack's settings file names the resources of a stack Terraform manages.
_NAME_ATTRIBUTES = {
    "table": "table_name",
    "topic": "topic_name",
    "queue": "queue_name",
    "dlq": "dlq_name",
    "function": "function_name",
    "role": "role_name",
    "alerts_topic": "alerts_topic_name",
    "dlq_alarm": "dlq_alarm_name",
}


def next_steps(exported: Exported, stack: str) -> list[str]:
    """The commands a user runs next with what was exported."""
    template = exported.directory / TEMPLATE
    name = f"orderflow-{stack}"
    if exported.format == "terraform":
        config = StackConfig(stack)
        names = {key: getattr(config, attribute) for key, attribute in _NAME_ATTRIBUTES.items()}
        return [
            f"cd {exported.directory} && terraform init && terraform apply",
            "then add to orderflow.toml (so orderflow proves the stack and leaves changing it to Terraform):",
            f"[stacks.{stack}.resources]",
            *(f'{key} = "{name}"' for key, name in names.items()),
            f"orderflow --stack {stack} publish-test && orderflow --stack {stack} verify",
        ]
    if exported.format == "sam":
        return [
            f"sam deploy --template-file {template} --stack-name {name} --capabilities CAPABILITY_NAMED_IAM "
            "--resolve-s3",
            f"orderflow --from-cloudformation {name} verify",
        ]
    code = (
        ""
        if exported.code_location
        else f" --parameter-overrides {cloudformation.CODE_BUCKET}=<bucket> {cloudformation.CODE_KEY}=<key of "
        f"{PACKAGE} in it>"
    )
    return [
        f"aws cloudformation deploy --template-file {template} --stack-name {name} "
        f"--capabilities CAPABILITY_NAMED_IAM{code}",
        f"orderflow --from-cloudformation {name} publish-test && orderflow --from-cloudformation {name} verify",
    ]
