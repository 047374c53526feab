"""CloudWatch alarm evaluation for the embedded AWS (moto stores alarms but never evaluates them).

What is copied, with its source (CloudWatch User Guide, "Using Amazon CloudWatch alarms" and "Using math
expressions with CloudWatch metrics"):
- every period, the alarm looks at its last EvaluationPeriods datapoints; it goes to ALARM when DatapointsToAlarm
  of them (default: all) breach the threshold;
- TreatMissingData: `missing` (default; no data at all -> INSUFFICIENT_DATA), `notBreaching`, `breaching`, `ignore`
  (keep the current state);
- an alarm on a metric math expression evaluates the expression over its MetricStat queries; DIFF(m) is each value
  minus the one before it (no value for the first), FILL(m, v) puts v where m has no datapoint, a + b adds;
- actions run on a state change only: AlarmActions on entering ALARM, OKActions on OK, InsufficientDataActions on
  INSUFFICIENT_DATA; an SNS action receives the alarm as a JSON message with the subject `ALARM: "name" in region`.

Everything here is pure: the monitoring loop (monitoring.py) supplies the datapoints and performs the actions.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise
from typing import Any

Series = list[float | None]  # one value per period, oldest first; None where the metric has no datapoint
# (metric as in a MetricStat: Namespace, MetricName, Dimensions), statistic, number of periods -> series
SeriesSource = Callable[[dict[str, Any], str, int], Series]

COMPARISONS: dict[str, Callable[[float, float], bool]] = {
    "GreaterThanThreshold": lambda v, t: v > t,
    "GreaterThanOrEqualToThreshold": lambda v, t: v >= t,
    "LessThanThreshold": lambda v, t: v < t,
    "LessThanOrEqualToThreshold": lambda v, t: v <= t,
}
_WORDS = {
    "GreaterThanThreshold": "greater than",
    "GreaterThanOrEqualToThreshold": "greater than or equal to",
    "LessThanThreshold": "less than",
    "LessThanOrEqualToThreshold": "less than or equal to",
}


class UnsupportedAlarm(Exception):
    """An alarm the embedded AWS cannot evaluate (an expression or comparison it does not implement)."""


@dataclass(frozen=True)
class Evaluation:
    state: str  # OK | ALARM | INSUFFICIENT_DATA
    reason: str
    values: Series


def lookback(alarm: dict[str, Any]) -> int:
    """Periods to read: the evaluation range, plus one for DIFF's first value."""
    return int(alarm["EvaluationPeriods"]) + 1


_CALL = re.compile(r"^\s*(DIFF|FILL)\s*\((.*)\)\s*$", re.DOTALL)


def _top_level_terms(expression: str) -> list[str]:
    """`a + FILL(b, 0)` -> ["a ", " FILL(b, 0)"]: split on the `+` outside parentheses."""
    terms, depth, start = [], 0, 0
    for index, char in enumerate(expression):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "+" and depth == 0:
            terms.append(expression[start:index])
            start = index + 1
    return [*terms, expression[start:]]


def expression_series(expression: str, series: dict[str, Series]) -> Series:
    """The subset of metric math an orderflow alarm uses: an id, a + b, DIFF(x) and FILL(x, number), nested.
    A sum has no value where any term has none (metric math's arithmetic on time series)."""
    expression = expression.strip()
    if expression in series:
        return series[expression]
    terms = _top_level_terms(expression)
    if len(terms) > 1:
        parts = [expression_series(term, series) for term in terms]
        return [None if any(v is None for v in column) else sum(column) for column in zip(*parts, strict=True)]
    call = _CALL.match(expression)
    if call is None:
        raise UnsupportedAlarm(f"the embedded AWS does not evaluate the expression {expression!r}")
    function, argument = call.groups()
    if function == "DIFF":
        inner = expression_series(argument, series)
        return [None] + [
            None if previous is None or current is None else current - previous for previous, current in pairwise(inner)
        ]
    target, _, fill = argument.rpartition(",")
    try:
        value = float(fill)
    except ValueError as e:
        raise UnsupportedAlarm(f"the embedded AWS does not evaluate FILL({argument})") from e
    return [value if v is None else v for v in expression_series(target, series)]


def alarm_series(alarm: dict[str, Any], source: SeriesSource) -> Series:
    """The alarm's evaluated values for its lookback, oldest first."""
    periods = lookback(alarm)
    queries = alarm.get("Metrics") or []
    if not queries:
        stat = alarm.get("ExtendedStatistic") or alarm.get("Statistic") or "Average"
        metric = {k: alarm.get(k) for k in ("Namespace", "MetricName")} | {"Dimensions": alarm.get("Dimensions", [])}
        return source(metric, stat, periods)
    series: dict[str, Series] = {}
    for query in queries:
        if "MetricStat" in query:
            series[query["Id"]] = source(query["MetricStat"]["Metric"], query["MetricStat"]["Stat"], periods)
    returned = [q for q in queries if q.get("ReturnData", True)]
    if len(returned) != 1:
        raise UnsupportedAlarm("an alarm on metric math must return exactly one series")
    chosen = returned[0]
    return series[chosen["Id"]] if "MetricStat" in chosen else expression_series(chosen["Expression"], series)


def evaluate(alarm: dict[str, Any], values: Series) -> Evaluation:
    """The state the alarm's last EvaluationPeriods values put it in (`values` as alarm_series returns them)."""
    operator = alarm["ComparisonOperator"]
    if operator not in COMPARISONS:
        raise UnsupportedAlarm(f"the embedded AWS does not evaluate {operator}")
    periods = int(alarm["EvaluationPeriods"])
    needed = int(alarm.get("DatapointsToAlarm") or periods)
    threshold = float(alarm["Threshold"])
    window = values[-periods:]
    treat = alarm.get("TreatMissingData") or "missing"
    present = [v for v in window if v is not None]
    if not present and treat in ("missing", "ignore"):
        state = alarm.get("StateValue", "INSUFFICIENT_DATA") if treat == "ignore" else "INSUFFICIENT_DATA"
        return Evaluation(state, f"Insufficient Data: {periods} datapoint(s) were unknown.", window)
    breaching = sum(1 for v in present if COMPARISONS[operator](v, threshold))
    if treat == "breaching":
        breaching += len(window) - len(present)
    state = "ALARM" if breaching >= needed else "OK"
    shown = ", ".join(f"{v:g}" for v in present[-5:])
    verb = "was" if len(present) == 1 else "were"
    reason = (
        f"Threshold Crossed: {breaching} out of the last {periods} datapoints [{shown}] {verb} "
        f"{_WORDS[operator]} the threshold ({threshold:g}) (minimum {needed} datapoint(s) for OK -> ALARM transition)."
        if state == "ALARM"
        else f"Threshold Crossed: {len(present) - breaching} out of the last {periods} datapoints [{shown}] {verb} "
        f"not {_WORDS[operator]} the threshold ({threshold:g})."
    )
    return Evaluation(state, reason, window)


def actions_for(alarm: dict[str, Any], state: str) -> Sequence[str]:
    if not alarm.get("ActionsEnabled", True):
        return ()
    key = {"ALARM": "AlarmActions", "OK": "OKActions", "INSUFFICIENT_DATA": "InsufficientDataActions"}[state]
    return alarm.get(key) or ()


def notification(
    alarm: dict[str, Any], old_state: str, evaluation: Evaluation, account: str, region: str, at: datetime
) -> tuple[str, str]:
    """(subject, message) CloudWatch sends to an SNS action on a state change."""
    trigger: dict[str, Any] = {
        "Period": alarm.get("Period"),
        "EvaluationPeriods": alarm["EvaluationPeriods"],
        "DatapointsToAlarm": alarm.get("DatapointsToAlarm") or alarm["EvaluationPeriods"],
        "ComparisonOperator": alarm["ComparisonOperator"],
        "Threshold": alarm["Threshold"],
        "TreatMissingData": alarm.get("TreatMissingData") or "missing",
        "EvaluateLowSampleCountPercentile": "",
    }
    if alarm.get("Metrics"):
        trigger["Metrics"] = alarm["Metrics"]
    else:
        trigger |= {k: alarm.get(k) for k in ("MetricName", "Namespace", "Statistic", "Dimensions")}
    message = {
        "AlarmName": alarm["AlarmName"],
        "AlarmDescription": alarm.get("AlarmDescription"),
        "AWSAccountId": account,
        "AlarmConfigurationUpdatedTimestamp": str(alarm.get("AlarmConfigurationUpdatedTimestamp", "")),
        "NewStateValue": evaluation.state,
        "NewStateReason": evaluation.reason,
        "StateChangeTime": at.isoformat(timespec="milliseconds"),
        "Region": region,
        "AlarmArn": alarm["AlarmArn"],
        "OldStateValue": old_state,
        "OKActions": alarm.get("OKActions", []),
        "AlarmActions": alarm.get("AlarmActions", []),
        "InsufficientDataActions": alarm.get("InsufficientDataActions", []),
        "Trigger": trigger,
    }
    subject = f'{evaluation.state}: "{alarm["AlarmName"]}" in {region}'
    return subject[:100], json.dumps(message, default=str)
