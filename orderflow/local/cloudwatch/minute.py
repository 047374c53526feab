"""CloudWatch's minute on the embedded AWS: SQS publishes its queues' metrics, then every alarm is evaluated.

On AWS both happen once a minute; here the minute is 60 s x the embedded AWS's time scale, so a test or a demo
can watch an alarm go to ALARM and back within seconds. Alarms read their datapoints from moto's CloudWatch in
process (periods of Period x scale seconds, ending at the tick); metrics are published, states set and
notifications sent through the public APIs, like any client.
"""

from __future__ import annotations

import logging
import math
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from typing import Any

from orderflow.arns import parse_arn
from orderflow.aws import connect
from orderflow.local.cloudwatch.alarms import (
    Series,
    UnsupportedAlarm,
    actions_for,
    alarm_series,
    evaluate,
    notification,
)
from orderflow.local.cloudwatch.queue_metrics import sample_queues
from orderflow.local.cloudwatch.statistics import statistic
from orderflow.local.runtime.metrics import put_datums
from orderflow.local.server.state import LOCAL_CREDENTIALS

log = logging.getLogger("orderflow.local")

MINUTE_SECONDS = 60.0


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def period_series(
    datapoints: list[Any], metric: dict[str, Any], stat: str, periods: int, period: timedelta, end: datetime
) -> Series:
    """`stat` of the matching datapoints in each of `periods` periods ending at `end` (each period includes its
    end, so the datapoint published at a tick belongs to the period the tick closes)."""
    wanted = {(d["Name"], d["Value"]) for d in metric.get("Dimensions") or []}
    matching = [
        d
        for d in datapoints
        if d.namespace == metric.get("Namespace")
        and d.name == metric.get("MetricName")
        and {(x.name, x.value) for x in d.dimensions} == wanted
    ]
    series: Series = []
    for index in range(periods, 0, -1):
        high = end - period * (index - 1)
        low = high - period
        inside = [d for d in matching if low < _aware(d.timestamp) <= high]
        values = [d.value for d in inside if hasattr(d, "value")]
        sets = [(d.sample_count, d.sum, d.min, d.max) for d in inside if not hasattr(d, "value")]
        series.append(statistic(stat, values, sets))
    return series


# A tick runs this far (a fraction of the minute) after the minute it closes has ended, so that a tick a little
# late or early still closes that minute.
TICK_AFTER = 0.05


def minute_end(moment: datetime, interval: float) -> datetime:
    """The end of the last minute that had ended at `moment`, on the clock's grid of `interval`-second minutes.
    CloudWatch's periods start on the minute: a datapoint is in one period only, however a tick drifts (periods
    that ended at each tick's own wall-clock time once counted one letter in two minutes: an alarm fired twice)."""
    seconds = _aware(moment).timestamp()
    return datetime.fromtimestamp(math.floor(seconds / interval) * interval, timezone.utc)


class CloudWatchMinute:
    def __init__(self, endpoint: str, scale: float = 1.0, now: Callable[[], datetime] | None = None) -> None:
        self.endpoint = endpoint
        self.scale = scale
        self._now = now or (lambda: datetime.now(timezone.utc))
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="cloudwatch-minute", daemon=True)
        self._clients: dict[tuple[str, str], Any] = {}

    @property
    def interval(self) -> float:
        return MINUTE_SECONDS * self.scale

    def start(self) -> CloudWatchMinute:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _client(self, service: str, region: str) -> Any:
        if (service, region) not in self._clients:
            self._clients[(service, region)] = connect(
                region, endpoint_url=self.endpoint, credentials=LOCAL_CREDENTIALS
            ).client(service)
        return self._clients[(service, region)]

    def _until_next_minute(self) -> float:
        """Seconds until the clock's next minute boundary (ticks follow the wall clock, where periods are)."""
        seconds = self._now().timestamp()
        return (math.floor(seconds / self.interval - TICK_AFTER) + 1 + TICK_AFTER) * self.interval - seconds

    def _run(self) -> None:
        while not self._stop.wait(self._until_next_minute()):
            try:
                self.tick()
            except Exception:  # the next minute tries again, as CloudWatch would
                log.exception("CloudWatch's minute failed")

    def tick(self, now: datetime | None = None) -> datetime:
        """One minute: publish, then evaluate (`now`: when the tick runs, for a test that moves time itself). Returns
        the end of the minute it closed: its datapoints' timestamp."""
        end = minute_end(now or self._now(), self.interval)
        self.publish_queue_metrics(end)
        self.evaluate_alarms(end)
        return end

    def publish_queue_metrics(self, now: datetime) -> None:
        for (_account, region), datums in sample_queues(now).items():
            put_datums(self._client("cloudwatch", region), "AWS/SQS", datums)

    def evaluate_alarms(self, now: datetime) -> None:
        from moto.cloudwatch.models import cloudwatch_backends

        for account, regions in list(cloudwatch_backends.items()):
            for region, backend in list(regions.items()):
                if not backend.alarms:
                    continue
                datapoints = list(backend.get_all_metrics())
                cloudwatch = self._client("cloudwatch", region)
                for alarm in cloudwatch.describe_alarms(AlarmTypes=["MetricAlarm"])["MetricAlarms"]:
                    self._evaluate_one(cloudwatch, alarm, datapoints, account, region, now)

    def _evaluate_one(
        self, cloudwatch: Any, alarm: dict[str, Any], datapoints: list[Any], account: str, region: str, now: datetime
    ) -> None:
        period = timedelta(seconds=self._period_of(alarm) * self.scale)
        try:
            values = alarm_series(
                alarm, lambda metric, stat, periods: period_series(datapoints, metric, stat, periods, period, now)
            )
            result = evaluate(alarm, values)
        except UnsupportedAlarm as e:
            if alarm["StateValue"] != "INSUFFICIENT_DATA":
                cloudwatch.set_alarm_state(
                    AlarmName=alarm["AlarmName"], StateValue="INSUFFICIENT_DATA", StateReason=str(e)[:1023]
                )
            return
        if result.state == alarm["StateValue"]:
            return
        cloudwatch.set_alarm_state(
            AlarmName=alarm["AlarmName"], StateValue=result.state, StateReason=result.reason[:1023]
        )
        log.info("alarm %s: %s -> %s (%s)", alarm["AlarmName"], alarm["StateValue"], result.state, result.reason)
        for action in actions_for(alarm, result.state):
            target = parse_arn(action) if action.startswith("arn:") else None
            if target is not None and target.service == "sns":  # other action kinds are not run here
                subject, message = notification(alarm, alarm["StateValue"], result, account, region, now)
                try:
                    self._client("sns", target.region).publish(TopicArn=action, Subject=subject, Message=message)
                except Exception as e:  # noqa: BLE001 - a deleted topic: CloudWatch records the failed action
                    log.warning("alarm %s: could not notify %s: %s", alarm["AlarmName"], action, e)

    @staticmethod
    def _period_of(alarm: dict[str, Any]) -> int:
        if alarm.get("Period"):
            return int(alarm["Period"])
        stats = [q["MetricStat"]["Period"] for q in alarm.get("Metrics") or [] if "MetricStat" in q]
        return int(min(stats)) if stats else 60
