"""IAM role `ProcessOrderFunction-role`: trusted by Lambda, with least-privilege inline policies."""

from __future__ import annotations

import json

from botocore.exceptions import ClientError

from orderflow.aws import is_not_found
from orderflow.provision import policies
from orderflow.provision.base import Context, Observed, Resource, changed
from orderflow.stack import tag_dict, tag_list


def _as_dict(document: dict | str) -> dict:
    # boto3 decodes IAM's URL-encoded documents into dicts; other clients may hand back the JSON text.
    return json.loads(document) if isinstance(document, str) else document


def attached_policy_documents(ctx: Context, role_name: str) -> list[dict]:
    """The default versions of the managed policies attached to a role (someone may have attached one by hand)."""
    iam = ctx.client("iam")
    documents = []
    for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=role_name):
        for attached in page["AttachedPolicies"]:
            arn = attached["PolicyArn"]
            version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
            documents.append(
                _as_dict(iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"])
            )
    return documents


class Role(Resource):
    key = "role"
    kind = "IAM role"

    def name(self, ctx: Context) -> str:
        return ctx.config.role_name

    def arn(self, ctx: Context) -> str:
        return ctx.arns.role(self.name(ctx))

    def desired_policies(self, ctx: Context) -> dict[str, dict]:
        return policies.function_inline_policies(ctx.config, ctx.arns)

    def read(self, ctx: Context) -> Observed | None:
        iam = ctx.client("iam")
        try:
            role = iam.get_role(RoleName=self.name(ctx))["Role"]
            names = [
                n
                for page in iam.get_paginator("list_role_policies").paginate(RoleName=self.name(ctx))
                for n in page["PolicyNames"]
            ]
            inline = {
                n: _as_dict(iam.get_role_policy(RoleName=self.name(ctx), PolicyName=n)["PolicyDocument"]) for n in names
            }
        except ClientError as e:
            if is_not_found(e):
                return None
            raise
        return Observed(
            state={"arn": role["Arn"], "trust": _as_dict(role["AssumeRolePolicyDocument"]), "inline": inline},
            tags=tag_dict(role.get("Tags")),
        )

    def diff(self, ctx: Context, observed: Observed) -> list[str]:
        lines = changed("trust policy", observed.state["trust"], policies.lambda_trust_policy())
        current = observed.state["inline"]
        for name, document in self.desired_policies(ctx).items():
            if name not in current:
                lines.append(f"inline policy {name} is missing")
            elif current[name] != document:
                lines.append(f"inline policy {name} differs")
        lines += [
            f"inline policy {name} is not ours (least privilege: removed)"
            for name in current
            if name not in self.desired_policies(ctx)
        ]
        return lines

    def create(self, ctx: Context) -> None:
        ctx.client("iam").create_role(
            RoleName=self.name(ctx),
            AssumeRolePolicyDocument=json.dumps(policies.lambda_trust_policy()),
            Description=f"orderflow stack {ctx.config.name}: lets {ctx.config.function_name} process orders",
            Tags=tag_list(ctx.config.tags),
        )
        self.update(ctx, Observed(state={"trust": policies.lambda_trust_policy(), "inline": {}}))

    def update(self, ctx: Context, observed: Observed) -> None:
        iam = ctx.client("iam")
        if observed.state["trust"] != policies.lambda_trust_policy():
            iam.update_assume_role_policy(
                RoleName=self.name(ctx), PolicyDocument=json.dumps(policies.lambda_trust_policy())
            )
        desired = self.desired_policies(ctx)
        for name, document in desired.items():
            if observed.state["inline"].get(name) != document:
                iam.put_role_policy(RoleName=self.name(ctx), PolicyName=name, PolicyDocument=json.dumps(document))
        for name in observed.state["inline"]:
            if name not in desired:
                iam.delete_role_policy(RoleName=self.name(ctx), PolicyName=name)

    def delete(self, ctx: Context, observed: Observed) -> None:
        iam = ctx.client("iam")
        role = self.name(ctx)
        try:
            for name in observed.state.get("inline", {}):
                iam.delete_role_policy(RoleName=role, PolicyName=name)
            # A role with attached managed policies cannot be deleted; someone may have attached one by hand.
            for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=role):
                for attached in page["AttachedPolicies"]:
                    iam.detach_role_policy(RoleName=role, PolicyArn=attached["PolicyArn"])
            iam.delete_role(RoleName=role)
        except ClientError as e:
            if not is_not_found(e):
                raise
