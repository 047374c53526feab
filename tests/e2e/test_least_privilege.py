"""Least privilege, tried as a new user would: an IAM user on the embedded AWS holding exactly `orderflow policy`'s
document runs every command with its own keys — and with any one statement removed, the command that needs it
fails before writing anything, in one line naming the action and the resource (a mutation suite of the policy)."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.e2e.conftest import REGION, Cli

pytestmark = pytest.mark.e2e


def deployer(aws, policy: dict) -> dict[str, str]:
    """A new IAM user holding `policy`, and the environment its keys sign with."""
    iam = aws.client("iam")
    name = f"deployer-{uuid.uuid4().hex[:8]}"
    iam.create_user(UserName=name)
    iam.put_user_policy(UserName=name, PolicyName="orderflow", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"AWS_ACCESS_KEY_ID": key["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"]}


def as_user(home, embedded: str, stack: str, keys: dict[str, str]) -> Cli:
    return Cli(home, target=[], always=["--endpoint-url", embedded, "--stack", stack],
               env={"AWS_REGION": REGION, **keys})  # fmt: skip


def admin(home, embedded: str, stack: str) -> Cli:
    return as_user(home, embedded, stack, {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"})


def the_policy(home, embedded, stack) -> dict:
    return json.loads(admin(home, embedded, stack)("--json", "policy").stdout)


def run_every_command(user: Cli) -> list[tuple[str, object]]:
    """The commands a deployer runs, in order, until one fails: [(command, result)]."""
    ran = []
    message_id = ""
    for args in (
        ["up"],
        ["publish-test"],
        ["verify", "--timeout", "60"],
        ["watch", "--once"],
        ["trace", "--message-id", "{id}"],
        ["logs"],
        ["dlq", "show"],
        ["dlq", "redrive"],
        ["status"],
        ["policy", "--check"],  # the deployer may ask IAM what it may do (the same check `up` makes first)
        ["down", "--yes"],
    ):
        result = user(*[a.replace("{id}", message_id) for a in args], check=False)
        ran.append((" ".join(args[:2] if args[0] in ("dlq", "policy") else args[:1]), result))
        if result.returncode != 0:
            break
        if args[0] == "publish-test":
            message_id = result.stdout.split("as SNS message ")[1].split()[0]
    return ran


def test_a_user_holding_exactly_the_policy_runs_every_command(home, embedded, aws, stack):
    policy = the_policy(home, embedded, stack)
    resources = {
        r for s in policy["Statement"] for r in ([s["Resource"]] if isinstance(s["Resource"], str) else s["Resource"])
    }
    # Scoped to the stack's own ARNs: its names carry the stack's prefix; only actions with no resource type use "*".
    assert all(
        stack in r or r == "*" or r.endswith((":policy/*", ":log-group:*", "event-source-mapping:*", "${aws:username}"))
        for r in resources
    ), resources
    pass_role = next(s for s in policy["Statement"] if s["Action"] == ["iam:PassRole"])
    assert pass_role["Condition"] == {"StringEquals": {"iam:PassedToService": "lambda.amazonaws.com"}}
    assert pass_role["Resource"].endswith(f":role/{stack}-ProcessOrderFunction-role") or stack in pass_role["Resource"]

    ran = run_every_command(as_user(home, embedded, stack, deployer(aws, policy)))
    failed = [(name, r.returncode, r.stderr[-600:]) for name, r in ran if r.returncode != 0]
    assert failed == [] and len(ran) == 11, failed


def test_without_any_one_statement_the_command_that_needs_it_fails_naming_action_and_resource(home, embedded, aws):
    stack = f"m{uuid.uuid4().hex[:6]}"
    policy = the_policy(home, embedded, stack)
    survived = []
    for removed in policy["Statement"]:
        mutated = {**policy, "Statement": [s for s in policy["Statement"] if s is not removed]}
        user = as_user(home, embedded, stack, deployer(aws, mutated))
        try:
            ran = run_every_command(user)
        finally:
            admin(home, embedded, stack)("down", "--yes", check=False)
        name, last = ran[-1]
        if last.returncode == 0:
            survived.append(removed["Sid"])
            continue
        actions = removed["Action"]
        named = [line for line in last.stderr.splitlines() if any(a in line for a in actions)]
        assert named, (removed["Sid"], name, last.stderr)
        assert all(len(line) < 400 and " on " in line for line in named), named  # one line each: action on resource
        if name == "up":  # the preflight refuses before anything is written: the stack has nothing
            assert "exists" not in admin(home, embedded, stack)("--json", "status", check=False).stdout
    # Every statement is needed by a command. (That each action in it is called by one is
    # tests/unit/test_deployer_policy.py's to prove: the check here would refuse an unneeded one as well.)
    assert survived == []
