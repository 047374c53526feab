"""CloudWatch's statistics over a period's datapoints, for the embedded AWS (moto computes no percentiles).

Pure functions: the moto patch that answers `p95` in GetMetricStatistics / GetMetricData and the embedded alarm
evaluator use the same ones.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

# "p95", "p99.9": CloudWatch's percentile statistics (CloudWatch User Guide, "Statistics definitions").
_PERCENTILE = re.compile(r"^p(\d{1,2}(?:\.\d+)?|100)$")


def percentile_of(stat: str) -> float | None:
    """The percentile a statistic names (`p95` -> 95.0), or None when it names none."""
    found = _PERCENTILE.match(stat)
    return float(found.group(1)) if found else None


def percentile(values: Sequence[float], rank: float) -> float | None:
    """The nearest-rank percentile: the smallest value with at least `rank` % of the values at or below it."""
    if not values:
        return None
    ordered = sorted(values)
    index = max(0, math.ceil(rank / 100 * len(ordered)) - 1)
    return ordered[min(index, len(ordered) - 1)]


def statistic(
    stat: str, values: Sequence[float], aggregated: Sequence[tuple[float, float, float, float]] = ()
) -> float | None:
    """`stat` over single values and (sample count, sum, minimum, maximum) statistic sets; None without data.

    Percentiles need the single values: CloudWatch cannot compute them from statistic sets either."""
    count = len(values) + sum(a[0] for a in aggregated)
    if not count:
        return None
    rank = percentile_of(stat)
    if rank is not None:
        return percentile(values, rank)
    total = sum(values) + sum(a[1] for a in aggregated)
    if stat == "SampleCount":
        return float(count)
    if stat == "Sum":
        return total
    if stat == "Average":
        return total / count
    if stat == "Minimum":
        return min([*values, *(a[2] for a in aggregated)])
    if stat == "Maximum":
        return max([*values, *(a[3] for a in aggregated)])
    return None
