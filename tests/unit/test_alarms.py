"""The embedded AWS's CloudWatch: statistics, Lambda's and SQS's datums, and alarm evaluation (pure)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta, timezone

import pytest

from orderflow.local.cloudwatch.alarms import (
    UnsupportedAlarm,
    actions_for,
    alarm_series,
    evaluate,
    expression_series,
    notification,
)
from orderflow.local.cloudwatch.minute import TICK_AFTER, minute_end
from orderflow.local.cloudwatch.queue_metrics import QueueCounters, queue_datums
from orderflow.local.cloudwatch.statistics import percentile, percentile_of, statistic
from orderflow.local.runtime.metrics import _FunctionMinute, function_datums
from orderflow.provision.resources.alarm import dlq_alarm_definition
from orderflow.stack import StackConfig

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=timezone.utc)


def test_percentiles_are_nearest_rank_and_need_single_values():
    assert percentile_of("p95") == 95.0 and percentile_of("p99.9") == 99.9 and percentile_of("Sum") is None
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0 and percentile(values, 95) == 95.0 and percentile(values, 100) == 100.0
    assert statistic("p50", [3.0, 1.0, 2.0]) == 2.0
    assert statistic("p50", [], [(4, 10.0, 1.0, 4.0)]) is None  # a statistic set has no percentiles
    assert statistic("Sum", [1.0], [(4, 10.0, 1.0, 4.0)]) == 11.0
    assert statistic("Maximum", [1.0], [(4, 10.0, 1.0, 4.0)]) == 4.0
    assert statistic("Average", [], []) is None


def test_function_datums_count_invocations_and_errors_and_keep_every_duration():
    minute = _FunctionMinute(invocations=3, errors=1, durations=[10.0, 12.0, 10.0], concurrency=[1.0, 2.0, 1.0])
    datums = {d["MetricName"]: d for d in function_datums("fn", minute, NOW)}
    assert datums["Invocations"]["Value"] == 3.0 and datums["Errors"]["Value"] == 1.0
    assert datums["Throttles"]["Value"] == 0.0
    assert (datums["Duration"]["Values"], datums["Duration"]["Counts"]) == ([10.0, 12.0], [2.0, 1.0])
    assert datums["Duration"]["Unit"] == "Milliseconds"
    assert datums["ConcurrentExecutions"]["Values"] == [1.0, 2.0]
    assert all(d["Dimensions"] == [{"Name": "FunctionName", "Value": "fn"}] for d in datums.values())


def test_many_distinct_durations_are_split_into_datums_of_150_values():
    minute = _FunctionMinute(invocations=400, durations=[float(i) for i in range(400)])
    durations = [d for d in function_datums("fn", minute, NOW) if d["MetricName"] == "Duration"]
    assert [len(d["Values"]) for d in durations] == [150, 150, 100]


def test_queue_datums_and_counters():
    counters = QueueCounters()
    counters.add("arn:q", "NumberOfMessagesSent", 2)
    counters.add("arn:q", "NumberOfMessagesDeleted")
    taken = counters.take()
    assert taken["arn:q"] == Counter({"NumberOfMessagesSent": 2, "NumberOfMessagesDeleted": 1})
    assert counters.take() == {}
    oldest_ms = int(NOW.timestamp() * 1000) - 90_000
    datums = {d["MetricName"]: d["Value"] for d in queue_datums("q", 4, 1, 0, oldest_ms, taken["arn:q"], NOW)}
    assert datums["ApproximateNumberOfMessagesVisible"] == 4 and datums["ApproximateNumberOfMessagesNotVisible"] == 1
    assert datums["ApproximateAgeOfOldestMessage"] == 90
    assert datums["NumberOfMessagesSent"] == 2 and datums["NumberOfMessagesReceived"] == 0


def test_diff_and_fill():
    series = {"m": [None, 1.0, 1.0, 3.0]}
    assert expression_series("DIFF(m)", series) == [None, None, 0.0, 2.0]
    assert expression_series("DIFF(FILL(m, 0))", series) == [None, 1.0, 0.0, 2.0]
    assert expression_series("FILL(m, 0) + m", series) == [None, 2.0, 2.0, 6.0]
    with pytest.raises(UnsupportedAlarm):
        expression_series("RATE(m)", series)


def _dlq_alarm() -> dict:
    return {**dlq_alarm_definition(StackConfig(), "arn:aws:sns:r:1:OrderAlerts"), "AlarmArn": "arn:alarm"}


def _series_of(visible: list[float | None], in_flight: list[float | None] | None = None):
    def source(metric, stat, periods):
        chosen = visible if metric["MetricName"] == "ApproximateNumberOfMessagesVisible" else in_flight
        return (chosen or [0.0] * len(visible))[-periods:]

    return source


def test_the_dlq_alarm_fires_on_each_new_letter_not_on_letters_that_stay():
    alarm = _dlq_alarm()
    assert evaluate(alarm, alarm_series(alarm, _series_of([0.0, 1.0]))).state == "ALARM"
    assert evaluate(alarm, alarm_series(alarm, _series_of([1.0, 1.0]))).state == "OK"
    assert evaluate(alarm, alarm_series(alarm, _series_of([1.0, 2.0]))).state == "ALARM"
    assert evaluate(alarm, alarm_series(alarm, _series_of([2.0, 0.0]))).state == "OK"  # redriven
    # SQS publishes nothing for a queue inactive for six hours: the first letter after that still counts
    assert evaluate(alarm, alarm_series(alarm, _series_of([None, 1.0]))).state == "ALARM"
    assert evaluate(alarm, alarm_series(alarm, _series_of([None, None], [None, None]))).state == "OK"
    # reading the letters (dlq show holds them in flight a moment) is no new letter
    assert evaluate(alarm, alarm_series(alarm, _series_of([2.0, 2.0], [0.0, 0.0]))).state == "OK"
    assert evaluate(alarm, alarm_series(alarm, _series_of([0.0, 2.0], [2.0, 0.0]))).state == "OK"


def test_missing_data_treatments():
    alarm = {"EvaluationPeriods": 2, "Threshold": 1, "ComparisonOperator": "GreaterThanThreshold", "StateValue": "OK"}
    assert evaluate(alarm, [None, None]).state == "INSUFFICIENT_DATA"
    assert evaluate({**alarm, "TreatMissingData": "ignore"}, [None, None]).state == "OK"
    assert evaluate({**alarm, "TreatMissingData": "breaching"}, [None, None]).state == "ALARM"
    assert evaluate({**alarm, "DatapointsToAlarm": 1}, [5.0, 0.0]).state == "ALARM"
    assert evaluate(alarm, [5.0, 0.0]).state == "OK"


def test_the_notification_is_cloudwatchs_message_to_the_alarm_actions():
    alarm = _dlq_alarm()
    result = evaluate(alarm, alarm_series(alarm, _series_of([0.0, 1.0])))
    subject, body = notification(alarm, "OK", result, "123456789012", "eu-west-2", NOW)
    message = json.loads(body)
    assert subject == 'ALARM: "OrderQueueDLQ-NewLetters" in eu-west-2'
    assert (message["OldStateValue"], message["NewStateValue"]) == ("OK", "ALARM")
    assert message["NewStateReason"].startswith("Threshold Crossed: 1 out of the last 1 datapoints [1]")
    assert message["Trigger"]["Metrics"][2]["Expression"] == "DIFF(FILL(visible, 0) + FILL(in_flight, 0))"
    assert actions_for(alarm, "ALARM") == ["arn:aws:sns:r:1:OrderAlerts"] and actions_for(alarm, "OK") == ()
    assert actions_for({**alarm, "ActionsEnabled": False}, "ALARM") == ()


# -- in-process: the moto patches and the CloudWatch minute on a real embedded AWS ---------------------------------


@pytest.fixture(scope="module")
def embedded():
    from orderflow.aws import connect
    from orderflow.local.server.embedded import EmbeddedAws
    from orderflow.local.server.state import LOCAL_CREDENTIALS

    # A minute of 10 hours: the test ticks it by hand, never the clock.
    with EmbeddedAws(runtime=False, time_scale=600) as aws:
        yield aws, connect("eu-west-2", endpoint_url=aws.endpoint, credentials=LOCAL_CREDENTIALS)


def test_percentiles_in_get_metric_statistics_and_get_metric_data(embedded):
    _, aws = embedded
    cloudwatch = aws.client("cloudwatch")
    now = datetime.now(timezone.utc)
    dimensions = [{"Name": "FunctionName", "Value": "pct"}]
    values = [float(v) for v in range(1, 101)]
    cloudwatch.put_metric_data(
        Namespace="AWS/Lambda",
        MetricData=[{"MetricName": "Duration", "Dimensions": dimensions, "Values": values, "Timestamp": now}],
    )
    window = {"StartTime": now - timedelta(minutes=5), "EndTime": now + timedelta(minutes=1)}
    [point] = cloudwatch.get_metric_statistics(
        Namespace="AWS/Lambda",
        MetricName="Duration",
        Dimensions=dimensions,
        Period=600,
        ExtendedStatistics=["p50", "p95"],
        Statistics=["Maximum"],
        **window,
    )["Datapoints"]
    assert point["ExtendedStatistics"] == {"p50": 50.0, "p95": 95.0} and point["Maximum"] == 100.0
    metric = {"Namespace": "AWS/Lambda", "MetricName": "Duration", "Dimensions": dimensions}
    [result] = cloudwatch.get_metric_data(
        MetricDataQueries=[{"Id": "p", "MetricStat": {"Metric": metric, "Period": 600, "Stat": "p99"}}], **window
    )["MetricDataResults"]
    assert result["Values"] == [99.0]


def test_sqs_counts_sends_receives_deletes_and_the_minute_publishes_them(embedded):
    server, aws = embedded
    sqs = aws.client("sqs")
    url = sqs.create_queue(QueueName="counted")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody="a")
    sqs.send_message_batch(QueueUrl=url, Entries=[{"Id": "1", "MessageBody": "b"}, {"Id": "2", "MessageBody": "c"}])
    received = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
    sqs.delete_message(QueueUrl=url, ReceiptHandle=received[0]["ReceiptHandle"])
    sqs.delete_message(QueueUrl=url, ReceiptHandle=received[0]["ReceiptHandle"])  # twice: counted once
    now = server.cloudwatch_minute.tick()  # the end of the minute it closed, on the clock's grid

    def latest(name: str) -> float:
        points = aws.client("cloudwatch").get_metric_statistics(
            Namespace="AWS/SQS",
            MetricName=name,
            Dimensions=[{"Name": "QueueName", "Value": "counted"}],
            StartTime=now - timedelta(minutes=5),
            EndTime=now + timedelta(minutes=1),
            Period=600,
            Statistics=["Sum"],
        )["Datapoints"]
        return points[0]["Sum"]

    assert latest("NumberOfMessagesSent") == 3.0
    assert latest("NumberOfMessagesReceived") == float(len(received))
    assert latest("NumberOfMessagesDeleted") == 1.0
    assert latest("ApproximateNumberOfMessagesNotVisible") == float(len(received) - 1)


def test_a_new_alarm_has_no_data_an_updated_one_keeps_its_state_and_a_tick_notifies(embedded):
    server, aws = embedded
    cloudwatch, sqs, sns = aws.client("cloudwatch"), aws.client("sqs"), aws.client("sns")
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    dlq = sqs.create_queue(QueueName="letters")["QueueUrl"]
    definition = {
        **dlq_alarm_definition(StackConfig(), topic),
        "AlarmName": "letters-alarm",
    }
    for query in definition["Metrics"][:2]:
        query["MetricStat"]["Metric"]["Dimensions"] = [{"Name": "QueueName", "Value": "letters"}]
    cloudwatch.put_metric_alarm(**definition)
    state = lambda: cloudwatch.describe_alarms(AlarmNames=["letters-alarm"])["MetricAlarms"][0]  # noqa: E731
    assert state()["StateValue"] == "INSUFFICIENT_DATA"
    # Minutes of 10 hours, ticked by hand at their ends, in the past (CloudWatch refuses datapoints from the future)
    minute = timedelta(seconds=server.cloudwatch_minute.interval)
    start = datetime.now(timezone.utc) - 10 * minute
    server.cloudwatch_minute.tick(start)
    assert state()["StateValue"] == "OK", state()["StateReason"]
    sqs.send_message(QueueUrl=dlq, MessageBody="a letter")
    server.cloudwatch_minute.tick(start + minute)
    assert state()["StateValue"] == "ALARM", state()["StateReason"]
    cloudwatch.put_metric_alarm(**{**definition, "AlarmDescription": "changed"})
    assert state()["StateValue"] == "ALARM"  # an update keeps the state
    server.cloudwatch_minute.tick(start + 2 * minute)
    assert state()["StateValue"] == "OK", state()["StateReason"]  # no new letter since
    sqs.send_message(QueueUrl=dlq, MessageBody="another letter")
    server.cloudwatch_minute.tick(start + 3 * minute)
    assert state()["StateValue"] == "ALARM"  # fires again for the second letter


def test_one_letter_fires_the_dlq_alarm_once_however_early_or_late_each_minute_ticks(embedded):
    """CloudWatch's periods are aligned to the clock: a tick a few ms early or late closes the same minute, so the
    letter's datapoint is never counted in two minutes (it fired again, OK -> ALARM twice for one letter)."""
    server, aws = embedded
    cloudwatch, sqs, sns = aws.client("cloudwatch"), aws.client("sqs"), aws.client("sns")
    topic = sns.create_topic(Name="jittered-alerts")["TopicArn"]
    dlq = sqs.create_queue(QueueName="jittered")["QueueUrl"]
    definition = {**dlq_alarm_definition(StackConfig(), topic), "AlarmName": "jittered-alarm"}
    for query in definition["Metrics"][:2]:
        query["MetricStat"]["Metric"]["Dimensions"] = [{"Name": "QueueName", "Value": "jittered"}]
    cloudwatch.put_metric_alarm(**definition)
    interval = server.cloudwatch_minute.interval
    minute = timedelta(seconds=interval)
    # Ticks as the clock schedules them, TICK_AFTER into each minute, then some ms early or late.
    start = minute_end(datetime.now(timezone.utc), interval) - 20 * minute + TICK_AFTER * minute
    jitter = [timedelta(milliseconds=ms) for ms in (0, -30, 25, -40, 35, -20, 10, -45)]
    states = []
    for index, early_or_late in enumerate(jitter):
        if index == 1:
            sqs.send_message(QueueUrl=dlq, MessageBody="one letter")
        server.cloudwatch_minute.tick(start + index * minute + early_or_late)
        states.append(cloudwatch.describe_alarms(AlarmNames=["jittered-alarm"])["MetricAlarms"][0]["StateValue"])
    assert states == ["OK", "ALARM", "OK", "OK", "OK", "OK", "OK", "OK"]
