"""CloudWatch's minute on the embedded AWS: SQS publishes its queues' metrics, then every alarm is evaluated.

On AWS both happen once a minute; here the minute is 60 s x the embedded AWS's time scale, so a test or a demo
can watch an alarm go to ALARM and back within seconds. Alarms read their datapoints from moto's CloudWatch in
process (periods of Period x scale seconds, ending at the tick); metrics are published, states set and
notifications sent through the public APIs, like any client.
"""

from __future__ import annotations

import logging
import threading
import time
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

    def _run(self) -> None:
        next_tick = time.monotonic() + self.interval
        while not self._stop.wait(max(0.0, next_tick - time.monotonic())):
            next_tick += self.interval
            try:
                self.tick()
            except Exception:  # the next minute tries again, as CloudWatch would
                log.exception("CloudWatch's minute failed")

    def tick(self, now: datetime | None = None) -> None:
        """One minute: publish, then evaluate (`now`: the minute's end, for a test that moves time itself)."""
        now = now or self._now()
        self.publish_queue_metrics(now)
        self.evaluate_alarms(now)

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
