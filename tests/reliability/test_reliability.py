"""Every order either lands in DynamoDB exactly once or waits in the DLQ; nothing is lost; nothing outside the stack
is touched. Each case reconciles its counts and prints them (pytest -s) for docs/reliability.md."""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest

from tests.e2e.conftest import ORDER, wait_for
from tests.reliability.conftest import died_invocations, function_log, pipeline_state, report, table_ids

pytestmark = [pytest.mark.e2e, pytest.mark.slow]
FAST = ["--function-timeout", "1", "--visibility-timeout", "6", "--max-receive-count", "3"]
GOOD_ORDERS = int(os.environ.get("ORDERFLOW_RELIABILITY_ORDERS", "1000"))


def _order(order_id: str, **changes) -> str:
    return json.dumps(ORDER | {"orderId": order_id} | changes)


def bad_messages(topic_arn: str) -> tuple[dict[str, str], dict[str, str]]:
    """Kinds of bad message: (published through SNS, sent straight to SQS)."""
    via_sns = {
        "invalid JSON": "this is not json {",
        "JSON array": json.dumps([json.loads(_order("arr"))]),
        "JSON null": "null",
        "JSON string": '"an order"',
        "JSON number": "42",
        "empty object": "{}",
        "missing orderId": json.dumps(ORDER),
        "empty orderId": _order(""),
        "blank orderId": _order("   "),
        "numeric orderId": json.dumps(ORDER | {"orderId": 12}),
        "orderId over 2048 bytes": _order("x" * 3000),
        "quantity 0": _order("bad-q0", quantity=0),
        "quantity negative": _order("bad-qneg", quantity=-3),
        "quantity string": _order("bad-qstr", quantity="1"),
        "quantity float": _order("bad-qfloat", quantity=1.5),
        "quantity bool": _order("bad-qbool", quantity=True),
        "quantity NaN": _order("bad-qnan", quantity=0).replace('"quantity": 0', '"quantity": NaN'),
        "bad timestamp": _order("bad-ts", timestamp="yesterday at noon"),
        "missing timestamp": json.dumps({k: v for k, v in json.loads(_order("bad-nots")).items() if k != "timestamp"}),
        "userId number": _order("bad-user", userId=7),
        "itemName null": _order("bad-item", itemName=None),
        "status list": _order("bad-status", status=["new"]),
        "empty nested field name": _order("bad-field", extra={"": 1}),
        "lone surrogate escape": _order("bad-utf").replace('"Laptop"', '"Lap\\udc80top"'),
        "deeply nested JSON": "[" * 50_000 + "]" * 50_000,
        "huge body near 256 KB": "x" * 200_000,
    }
    via_sqs = {
        "whitespace body": "   ",
        "envelope without Message": json.dumps({"Type": "Notification", "MessageId": "m-1", "TopicArn": topic_arn}),
        "envelope with object Message": json.dumps(
            {"Type": "Notification", "MessageId": "m-2", "TopicArn": topic_arn, "Message": json.loads(_order("obj"))}
        ),
    }
    return via_sns, via_sqs


def test_bad_input_at_scale_every_good_order_written_once_every_bad_one_dead_lettered(cli, aws, stack):
    cli("--stack", stack, "up", *FAST)
    topic = f"arn:aws:sns:us-east-1:{aws.account}:{stack}-OrderTopic"
    via_sns, via_sqs = bad_messages(topic)
    half = GOOD_ORDERS // 2
    good = [p["orderId"] for p in cli.json("--stack", stack, "publish-test", "--count", str(half))["published"]]
    for body in via_sns.values():
        aws.client("sns").publish(TopicArn=topic, Message=body)
    queue = aws.queue_url(f"{stack}-OrderQueue")
    for body in via_sqs.values():
        aws.client("sqs").send_message(QueueUrl=queue, MessageBody=body)
    good += [
        p["orderId"]
        for p in cli.json("--stack", stack, "publish-test", "--count", str(GOOD_ORDERS - half))["published"]
    ]
    bad = len(via_sns) + len(via_sqs)

    dlq = f"{stack}-OrderQueueDLQ"
    wait_for(
        lambda: aws.depth(dlq) >= bad and aws.depth(f"{stack}-OrderQueue") == 0,
        180,
        "the pipeline to settle",
        1,
        state=lambda: pipeline_state(aws, stack),
    )
    time.sleep(7)  # one more visibility timeout: nothing else may arrive
    written = table_ids(aws, f"{stack}-Orders")
    assert sorted(written) == sorted(good)  # every good order once, no bad one
    assert aws.depth(dlq) == bad
    letters = cli.json("--stack", stack, "dlq", "show", "--limit", "100")["letters"]
    assert len(letters) == bad

    records = aws.handler_records(f"/aws/lambda/{stack}-ProcessOrderFunction")
    attempts: dict[str, int] = {}
    for r in records:
        if r["outcome"] in ("invalid", "error"):
            attempts[r["sqsMessageId"]] = attempts.get(r["sqsMessageId"], 0) + 1
    assert len(attempts) == bad and set(attempts.values()) == {3}
    writes = [r["orderId"] for r in records if r["outcome"] == "written"]
    assert set(writes) == set(good)  # a batch retried as a whole rewrites an order harmlessly: one item each
    lost = len(good) + bad - len(written) - aws.depth(dlq)
    assert lost == 0
    report(
        f"bad input: {len(good)} good + {bad} bad kinds published; {len(written)} items (one per good order, "
        f"{len(writes) - len(good)} harmless rewrites), {aws.depth(dlq)} dead-lettered after exactly 3 attempts "
        f"each; lost {lost}"
    )


def test_duplicates_and_reordering_end_with_the_newest_version_once(cli, aws, stack):
    cli("--stack", stack, "up")
    count = max(50, GOOD_ORDERS // 5)
    base = datetime(2025, 5, 3, 12, tzinfo=timezone.utc)
    messages = []
    for i in range(count):
        for step, status in enumerate(("new", "paid", "shipped")):
            moment = base + timedelta(minutes=step)
            # Mixed offsets: the same instants written three ways must still order correctly.
            stamp = [
                moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
                moment.astimezone(timezone(timedelta(hours=2))).isoformat(),
                moment.isoformat(),
            ][i % 3]
            messages.append(_order(f"dup-{i}", status=status, timestamp=stamp))
    random.Random(7).shuffle(messages)
    topic = f"arn:aws:sns:us-east-1:{aws.account}:{stack}-OrderTopic"
    for start in range(0, len(messages), 10):
        aws.client("sns").publish_batch(
            TopicArn=topic,
            PublishBatchRequestEntries=[
                {"Id": str(i), "Message": m} for i, m in enumerate(messages[start : start + 10])
            ],
        )
    group = f"/aws/lambda/{stack}-ProcessOrderFunction"
    wait_for(
        lambda: len(aws.handler_records(group)) >= len(messages),
        120,
        "every message to be handled",
        1,
        state=lambda: pipeline_state(aws, stack),
    )
    records = aws.handler_records(group)
    items = aws.client("dynamodb").scan(TableName=f"{stack}-Orders")["Items"]
    assert len(items) == count
    assert {i["status"]["S"] for i in items} == {"shipped"}
    outcomes = [r["outcome"] for r in records]
    assert set(outcomes) <= {"written", "stale"} and aws.depth(f"{stack}-OrderQueueDLQ") == 0
    report(
        f"duplicates: {count} orders x 3 versions shuffled ({len(messages)} messages): {len(items)} items, all "
        f"newest; {outcomes.count('written')} writes, {outcomes.count('stale')} stale updates refused; lost 0"
    )


def test_function_processes_killed_mid_batch_lose_nothing(cli, aws, stack, embedded):
    cli("--stack", stack, "up", *FAST)
    count = 300
    table, queue = f"{stack}-Orders", f"{stack}-OrderQueue"

    def died() -> int:
        return died_invocations(function_log(aws, stack))

    kills: list[int] = []

    def kill_function_processes_while_they_work() -> None:
        """SIGKILL processes starting up or running a batch, from the first order on, so invocations die."""
        deadline = time.monotonic() + 60
        while len(kills) < 5 and time.monotonic() < deadline:
            for pid in embedded.runtime.host.worker_pids(busy_only=True):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                    kills.append(pid)
            time.sleep(0.02)

    killer = threading.Thread(target=kill_function_processes_while_they_work)
    killer.start()
    published = {p["orderId"] for p in cli.json("--stack", stack, "publish-test", "--count", str(count))["published"]}
    killer.join()
    # A killed batch returns after the visibility timeout and is rewritten harmlessly. A batch that fails 3 times
    # (killed more than once, or killed and then timed out on a starved machine) is dead-lettered, as on AWS: that
    # is not a loss as long as its orders are in the DLQ, after 3 attempts.
    wait_for(lambda: aws.depth(queue) == 0, 120, "the queue to drain", 1, state=lambda: pipeline_state(aws, stack))
    letters = cli.json("--stack", stack, "dlq", "show", "--limit", str(count))["letters"]
    dead = {lt["orderId"] for lt in letters}
    written = set(table_ids(aws, table))
    assert died() > 0, f"no invocation died: {len(kills)} kills never hit a running function"
    assert written | dead == published, f"lost: {sorted(published - written - dead)}"
    assert written <= published and all(lt["receiveCount"] >= 3 for lt in letters)
    if letters:  # whatever was dead-lettered comes home with a redrive
        assert cli.json("--stack", stack, "dlq", "redrive")["moved"] == len(letters)
        wait_for(lambda: set(table_ids(aws, table)) == published, 60, "the redriven orders", 1)
    assert aws.depth(f"{stack}-OrderQueueDLQ") == 0
    report(
        f"SIGKILL: {len(kills)} function processes killed while {count} orders flowed; {died()} invocations died; "
        f"{len(written)} written at once, {len(letters)} dead-lettered after 3 attempts "
        f"({len(dead - written)} of them not yet written) and redriven; lost 0"
    )


def test_a_dynamodb_outage_then_recovery_loses_nothing_and_redrive_brings_the_rest_home(cli, aws, stack, faults):
    cli("--stack", stack, "up", *FAST)
    faults.fail({"PutItem"}, "ProvisionedThroughputExceededException")
    started = time.monotonic()
    early = cli.json("--stack", stack, "publish-test", "--count", "40")["published"]
    time.sleep(max(0.0, 12 - (time.monotonic() - started)))
    late = cli.json("--stack", stack, "publish-test", "--count", "20")["published"]
    time.sleep(max(0.0, 20 - (time.monotonic() - started)))
    faults.clear()  # DynamoDB recovers after 20 s: past the 3rd attempt of the early orders
    table, dlq = f"{stack}-Orders", f"{stack}-OrderQueueDLQ"
    total = len(early) + len(late)
    wait_for(
        lambda: len(table_ids(aws, table)) + aws.depth(dlq) == total and aws.depth(f"{stack}-OrderQueue") == 0,
        60,
        "the pipeline to settle after the outage",
        1,
        state=lambda: pipeline_state(aws, stack),
    )
    dead = aws.depth(dlq)
    written_before = len(table_ids(aws, table))
    assert dead > 0, "an outage longer than 3 visibility timeouts must dead-letter the earliest orders"
    assert {o["orderId"] for o in late} <= set(table_ids(aws, table)), (
        "orders that outlived the outage were retried home"
    )
    moved = cli.json("--stack", stack, "dlq", "redrive")["moved"]
    assert moved == dead
    wait_for(lambda: len(table_ids(aws, table)) == total, 60, "the redriven orders", 1)
    assert sorted(table_ids(aws, table)) == sorted(o["orderId"] for o in early + late)
    assert aws.depth(dlq) == 0
    report(
        f"DynamoDB outage of 20 s: {total} orders; {written_before} written after retries, {dead} dead-lettered "
        f"after 3 attempts, {moved} redriven and written; lost 0"
    )


def test_the_runtime_stopped_and_restarted_while_messages_wait_loses_nothing(cli, aws, stack, embedded):
    cli("--stack", stack, "up", *FAST)
    table = f"{stack}-Orders"
    first: list[dict] = []
    publishing = threading.Thread(
        target=lambda: first.extend(cli.json("--stack", stack, "publish-test", "--count", "1000")["published"])
    )
    publishing.start()
    # Stopped mid-flow: batches in flight, orders still arriving.
    wait_for(lambda: len(table_ids(aws, table)) >= 30, 60, "processing to begin", 0.2)
    embedded.stop_runtime()
    stopped_at = len(table_ids(aws, table))
    publishing.join()
    assert len(first) == 1000
    second = cli.json("--stack", stack, "publish-test", "--count", "100")["published"]
    time.sleep(2)
    assert len(table_ids(aws, table)) == stopped_at  # nothing consumes while the runtime is away
    embedded.start_runtime()
    everything = sorted(p["orderId"] for p in first + second)
    wait_for(
        lambda: len(table_ids(aws, table)) == len(everything),
        90,
        "every order after the restart",
        1,
        state=lambda: pipeline_state(aws, stack),
    )
    assert sorted(table_ids(aws, table)) == everything
    assert aws.depth(f"{stack}-OrderQueueDLQ") == 0
    report(
        f"runtime restart: stopped mid-publish after {stopped_at} of 1000 orders, 100 more queued while stopped; "
        f"{len(everything)} written after the restart; lost 0"
    )


WRITES_IN_A_FRESH_UP = 17  # table, topic, alerts topic, 2 queues (the policy is part of the new queue), DLQ alarm,
# subscribe, role + 5 policies, group + retention, fn, ESM. Independent steps run side by side, so which write is the
# n-th varies: any order holds.
WRITES_IN_A_DOWN = 17


def test_up_interrupted_after_each_step_converges_on_the_next_up(cli, aws, faults):
    for step in range(1, WRITES_IN_A_FRESH_UP + 1):
        stack = f"iu{step}x{os.getpid() % 1000}"
        faults.fail_nth_provisioning_write(step)
        broken = cli("--stack", stack, "up", check=False)
        faults.clear()
        assert broken.returncode == 1 and "InjectedInterruption" in broken.stderr, (step, broken.stderr)
        assert len(broken.stderr.strip().splitlines()) == 1
        cli("--stack", stack, "up")
        states = {r["key"]: r["state"] for r in cli.json("--stack", stack, "status")["resources"]}
        assert set(states.values()) == {"exists"}, (step, states)
        plan = cli.json("--stack", stack, "up", "--dry-run")["plan"]
        assert {p["action"] for p in plan} == {"unchanged"}, (step, plan)
        cli("--stack", stack, "down", "--yes")
    report(
        f"interrupted up: failed at each of {WRITES_IN_A_FRESH_UP} provisioning writes in turn; "
        "every next up converged to the full stack with no drift"
    )


def test_down_interrupted_after_each_step_is_finished_by_the_next_down(cli, aws, faults):
    for step in range(1, WRITES_IN_A_DOWN + 1):
        stack = f"id{step}x{os.getpid() % 1000}"
        cli("--stack", stack, "up")
        faults.fail_nth_provisioning_write(step)
        broken = cli("--stack", stack, "down", "--yes", check=False)
        faults.clear()
        assert broken.returncode == 1 and "InjectedInterruption" in broken.stderr, (step, broken.stderr)
        cli("--stack", stack, "down", "--yes")
        states = {r["key"]: r["state"] for r in cli.json("--stack", stack, "status")["resources"]}
        assert set(states.values()) == {"missing"}, (step, states)
    report(f"interrupted down: failed at each of {WRITES_IN_A_DOWN} deletions in turn; every next down left nothing")


def test_same_named_resources_made_outside_orderflow_are_refused_and_never_touched(cli, aws, stack):
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName=f"{stack}-OrderQueue")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="someone else's message")
    aws.client("dynamodb").create_table(
        TableName=f"{stack}-Orders",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "orderId", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "orderId", "AttributeType": "S"}],
    )
    aws.client("dynamodb").put_item(TableName=f"{stack}-Orders", Item={"orderId": {"S": "theirs"}})
    refused = cli("--stack", stack, "up", check=False)
    assert refused.returncode == 1 and f"'{stack}-Orders' already exists" in refused.stderr
    results = {r["resource"]: r["outcome"] for r in cli.json("--stack", stack, "down", "--yes")["results"]}
    assert results["table"] == results["queue"] == "not ours, left alone"
    assert aws.depth(f"{stack}-OrderQueue") == 1
    assert aws.item(f"{stack}-Orders", "theirs")
    sqs.delete_queue(QueueUrl=url)
    aws.client("dynamodb").delete_table(TableName=f"{stack}-Orders")
    report("ownership: untagged same-named table and queue refused by up, untouched by down (item and message kept)")


def test_every_policy_up_writes_is_least_privilege(cli, aws, stack):
    cli("--stack", stack, "up")
    iam = aws.client("iam")
    role = f"{stack}-ProcessOrderFunction-role"
    documents = [
        iam.get_role_policy(RoleName=role, PolicyName=n)["PolicyDocument"]
        for n in iam.list_role_policies(RoleName=role)["PolicyNames"]
    ]
    queue_policy = json.loads(
        aws.client("sqs").get_queue_attributes(
            QueueUrl=aws.queue_url(f"{stack}-OrderQueue"), AttributeNames=["Policy"]
        )["Attributes"]["Policy"]
    )
    statements = [s for d in [*documents, queue_policy] for s in d["Statement"]]
    assert len(documents) == 5 and len(statements) == 6
    for statement in statements:
        actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        assert all("*" not in a for a in actions), statement
        assert "*" not in statement["Resource"].replace(":*", ""), statement  # only the log group's stream suffix
        assert f":{aws.account}:" in statement["Resource"] and f"{stack}-" in statement["Resource"], statement
    report(f"least privilege: {len(statements)} statements, no wildcard action, each names one ARN of this stack")


def _journal(home, stack: str) -> tuple[list[str], list[str]]:
    """(sent, about to send) orderIds of the stack's last publish, as the journal on disk says."""
    path = home / "published" / f"{stack}.json"
    sent: list[str] = []
    sending: list[str] = []
    if not path.exists():
        return sent, sending
    for line in path.read_text().splitlines()[1:]:
        record = json.loads(line)
        sent += [o["order_id"] for o in record.get("orders", [])]
        sending += [o["orderId"] for o in record.get("sending", [])]
    return sent, sending


def _as_in_a_terminal() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # a background job's children would inherit SIGINT ignored


@pytest.mark.slow
@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL], ids=["SIGINT", "SIGKILL"])
def test_a_publish_stopped_at_any_batch_leaves_a_journal_that_accounts_for_every_order(cli, aws, stack, stop):
    """publish-test --count 400, stopped at its first three batches, its last two and five between (every one of
    its 40 with RELIABILITY_EVERY_BATCH=1, 10 minutes' work): once the pipeline has drained, every
    order in the table is one the journal says was sent or in flight, and every one it says was sent is in the
    table. A batch in flight when publish-test was killed may reach the server after the queue looked drained (the
    request was already in the socket): it lands in a later round, so an order is accounted for by any journal so
    far, not only this round's."""
    import subprocess
    import sys
    from pathlib import Path

    from tests.e2e.conftest import PROJECT_ROOT

    cli("--stack", stack, "up")
    home = Path(cli.env["ORDERFLOW_HOME"])
    table = f"{stack}-Orders"
    seen: list[str] = []
    journaled: set[str] = set()  # every order any round's journal said was sent or in flight
    accounted = []
    for batches in range(1, 41) if os.environ.get("RELIABILITY_EVERY_BATCH") else (1, 2, 3, 8, 15, 22, 29, 35, 39, 40):
        (home / "published" / f"{stack}.json").unlink(missing_ok=True)  # only this run's journal counts below
        publishing = subprocess.Popen(
            [sys.executable, "-m", "orderflow", *cli.always, "--stack", stack, "publish-test", "--count", "400"],
            env=cli.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=PROJECT_ROOT,
            preexec_fn=_as_in_a_terminal,
        )  # fmt: skip
        wait_for(lambda n=batches, p=publishing: len(_journal(home, stack)[1]) >= 10 * n or p.poll() is not None,
                 60, f"publish-test to reach batch {batches}")  # fmt: skip
        publishing.send_signal(stop)
        _, err = publishing.communicate(timeout=60)
        sent, sending = _journal(home, stack)
        if "publish-test interrupted" in err:  # (a SIGINT after the last batch interrupts only the report)
            assert f"after sending {len(sent)} of 400 order(s)" in err, err
        journaled |= {*sent, *sending}
        wait_for(lambda s=set(sent): aws.depth(f"{stack}-OrderQueue") == 0 and s <= set(table_ids(aws, table)),
                 120, "the pipeline to drain and every sent order to be in the table")  # fmt: skip
        written = set(table_ids(aws, table)) - set(seen)
        seen += written
        unaccounted = written - journaled
        lost = set(sent) - set(seen)
        assert unaccounted == set() and lost == set(), (batches, len(unaccounted), len(lost))
        accounted.append((len(sent), len(set(sending) - set(sent)), len(written)))
    flying = sum(1 for _, in_flight, _ in accounted if in_flight)
    name = signal.Signals(stop).name
    report(f"journal | {name} at {len(accounted)} of its 40 batches | every order accounted for; {flying} run(s) "
           f"stopped with a batch in flight; at batch 1: {accounted[0]} (sent, in flight, in the table)")  # fmt: skip
