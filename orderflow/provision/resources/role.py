"""IAM role `ProcessOrderFunction-role`: trusted by Lambda, with least-privilege inline policies."""

from __future__ import annotations

import json

from orderflow.aws import or_none
from orderflow.provision import policies
from orderflow.provision.base import Context, Observed, Resource, changed
from orderflow.provision.grants import OBSERVERS, Grant, grant
from orderflow.provision.ops import Call, Operation
from orderflow.stack import tag_dict, tag_list


def _as_dict(document: dict | str) -> dict:
    # boto3 decodes IAM's URL-encoded documents into dicts; other clients may hand back the JSON text.
    return json.loads(document) if isinstance(document, str) else document


def managed_policy_document(ctx: Context, arn: str) -> dict:
    """The default version of a managed policy."""
    iam = ctx.client("iam")
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    return _as_dict(iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"])


def attached_policy_documents(ctx: Context, role_name: str) -> list[dict]:
    """The default versions of the managed policies attached to a role (someone may have attached one by hand)."""
    iam = ctx.client("iam")
    return [
        managed_policy_document(ctx, attached["PolicyArn"])
        for page in iam.get_paginator("list_attached_role_policies").paginate(RoleName=role_name)
        for attached in page["AttachedPolicies"]
    ]


class Role(Resource):
    key = "role"
    kind = "IAM role"

    def grants(self, ctx: Context) -> list[Grant]:
        role = self.arn(ctx)
        reads = ("iam:GetRole", "iam:ListRolePolicies", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies")
        writes = ("iam:CreateRole", "iam:TagRole", "iam:PutRolePolicy", "iam:DeleteRolePolicy",
                  "iam:DetachRolePolicy", "iam:UpdateAssumeRolePolicy")  # fmt: skip
        # verify judges the role as AWS does: it reads what is attached to it and its permissions boundary, which
        # may be any managed policy of the account's or AWS's.
        managed = (
            f"arn:{ctx.arns.partition}:iam::{ctx.arns.account}:policy/*",
            f"arn:{ctx.arns.partition}:iam::aws:policy/*",
        )
        passed = {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}
        return [
            grant(OBSERVERS | {"verify"}, reads, role),
            grant({"verify"}, ("iam:GetPolicy", "iam:GetPolicyVersion"), *managed),
            grant({"up"}, writes, role),
            # Lambda runs the function as this role: the deployer may hand this role to Lambda, and to nothing else.
            grant({"up"}, ("iam:PassRole",), role, condition=passed),
            grant({"down"}, ("iam:DeleteRolePolicy", "iam:DetachRolePolicy", "iam:DeleteRole"), role),
        ]

    def name(self, ctx: Context) -> str:
        return ctx.config.role_name

    def tag_call(self, ctx: Context) -> Call | None:
        return Call("iam", "TagRole", {"RoleName": self.name(ctx), "Tags": tag_list(ctx.config.tags)}, self.name(ctx))

    def arn(self, ctx: Context) -> str:
        return ctx.arns.role(self.name(ctx))

    def desired_policies(self, ctx: Context) -> dict[str, dict]:
        return policies.function_inline_policies(ctx.config, ctx.arns)

    def read(self, ctx: Context) -> Observed | None:
        iam = ctx.client("iam")

        def read() -> tuple[dict, dict[str, dict]]:
            role = iam.get_role(RoleName=self.name(ctx))["Role"]
            names = [
                n
                for page in iam.get_paginator("list_role_policies").paginate(RoleName=self.name(ctx))
                for n in page["PolicyNames"]
            ]
            inline = {
                n: _as_dict(iam.get_role_policy(RoleName=self.name(ctx), PolicyName=n)["PolicyDocument"]) for n in names
            }
            return role, inline

        found = or_none(read)
        if found is None:
            return None
        role, inline = found
        return Observed(
            state={
                "arn": role["Arn"],
                "trust": _as_dict(role["AssumeRolePolicyDocument"]),
                "inline": inline,
                # Not orderflow's to set: a platform team's cap on the role, read so verify judges as AWS does.
                "boundary": (role.get("PermissionsBoundary") or {}).get("PermissionsBoundaryArn"),
            },
            tags=tag_dict(role.get("Tags")),
        )

    def _policy_operations(self, ctx: Context, inline: dict[str, dict]) -> list[Operation]:
        """Put each inline policy that is missing or differs; delete the ones that are not ours."""
        role, desired = self.name(ctx), self.desired_policies(ctx)
        operations: list[Operation] = []
        for name, document in desired.items():
            if inline.get(name) != document:
                reason = f"inline policy {name} is missing" if name not in inline else f"inline policy {name} differs"
                params = {"RoleName": role, "PolicyName": name, "PolicyDocument": json.dumps(document)}
                operations.append(Call("iam", "PutRolePolicy", params, f"{role}/{name}", (reason,)))
        for name in inline:
            if name not in desired:
                reason = f"inline policy {name} is not ours (least privilege: removed)"
                params = {"RoleName": role, "PolicyName": name}
                operations.append(Call("iam", "DeleteRolePolicy", params, f"{role}/{name}", (reason,)))
        return operations

    def create_operations(self, ctx: Context, vanishing: Observed | None) -> list[Operation]:
        params = {
            "RoleName": self.name(ctx),
            "AssumeRolePolicyDocument": json.dumps(policies.lambda_trust_policy()),
            "Description": f"orderflow stack {ctx.config.name}: lets {ctx.config.function_name} process orders",
            "Tags": tag_list(ctx.config.tags),
        }
        create = Call("iam", "CreateRole", params, self.name(ctx), exists=("EntityAlreadyExists",))
        return [create, *self._policy_operations(ctx, {})]

    def update_operations(self, ctx: Context, observed: Observed) -> list[Operation]:
        trust = policies.lambda_trust_policy()
        reasons = changed("trust policy", observed.state["trust"], trust)
        operations: list[Operation] = []
        if reasons:
            params = {"RoleName": self.name(ctx), "PolicyDocument": json.dumps(trust)}
            operations.append(Call("iam", "UpdateAssumeRolePolicy", params, self.name(ctx), tuple(reasons)))
        return operations + self._policy_operations(ctx, observed.state["inline"])

    def delete_operations(self, ctx: Context, observed: Observed) -> list[Operation]:
        role = self.name(ctx)
        operations: list[Operation] = [
            Call("iam", "DeleteRolePolicy", {"RoleName": role, "PolicyName": name}, f"{role}/{name}", gone_ok=True)
            for name in observed.state.get("inline", {})
        ]
        # A role with attached managed policies cannot be deleted; someone may have attached one by hand.
        operations += [
            Call("iam", "DetachRolePolicy", {"RoleName": role, "PolicyArn": arn}, f"{role} {arn}", gone_ok=True)
            for arn in self._attached(ctx)
        ]
        return [*operations, Call("iam", "DeleteRole", {"RoleName": role}, role, gone_ok=True)]

    def _attached(self, ctx: Context) -> list[str]:
        paginator = ctx.client("iam").get_paginator("list_attached_role_policies")
        pages = or_none(lambda: list(paginator.paginate(RoleName=self.name(ctx)))) or []
        return [attached["PolicyArn"] for page in pages for attached in page["AttachedPolicies"]]
