"""Anomaly detection on a path version's daily drop-off by step and activation rate.

A day is judged against the days before it with a robust score: the median of the trailing
window's daily values and their median absolute deviation (MAD), scaled by 1.4826 so that it
estimates a standard deviation on normal data:

    score = (value - median) / max(1.4826 x MAD, MIN_SCALE)

MIN_SCALE keeps a flat baseline (every day 0% drop-off, MAD 0) from turning one dropped
enrollment into an infinite score: with it, a flat baseline alerts only on a move of at least
THRESHOLD x MIN_SCALE (3.5 points).

Only the bad direction alerts: a drop-off that rises (score >= THRESHOLD) or an activation rate
that falls (score <= -THRESHOLD). An improvement raises nothing.

Volume: the judged day and every baseline day count only when their denominator (enrollments
that entered the step; mature enrollments for activation) is at least MIN_DENOMINATOR, and the
window must hold at least MIN_BASELINE_DAYS such days. A rate over a handful of enrollments
moves by whole tens of points from one person; judging it would only make noise.

The values come from analytics.funnels.metrics (the definitions the API, dashboards and /metrics
use), one UTC enrolment day at a time. The settings are module constants, the same for every
workspace: a per-workspace override would be fields on AnalyticsSettings.
"""

import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from analytics.funnels import metrics as rollup_metrics
from analytics.funnels.query import RollupQuery
from analytics.models import Alert
from analytics.rollups.services import activation_window_days
from paths.models import PathVersion
from tenancy.models import Workspace

WINDOW_DAYS = 28
THRESHOLD = 3.5
MIN_DENOMINATOR = 30
MIN_BASELINE_DAYS = 7
MAD_SCALE = 1.4826
MIN_SCALE = 0.01
# A day's drop-off keeps falling while its late enrollments advance; the judged day is the latest
# complete UTC day that has had this many more days to settle (today - 1 - DROP_OFF_SETTLE_DAYS).
DROP_OFF_SETTLE_DAYS = 1

Metric = Alert.Metric
# +1: a rise is bad; -1: a fall is bad.
BAD_DIRECTION = {Metric.DROP_OFF_RATE_BY_STEP: 1, Metric.ACTIVATION_RATE: -1}


@dataclass(frozen=True)
class Point:
    value: float | None
    numerator: int
    denominator: int


@dataclass(frozen=True)
class Finding:
    """An anomalous day of one series (a step's drop-off, or the activation rate)."""

    metric: str
    step_key: str
    day: date
    point: Point
    median: float
    mad: float
    baseline_days: int
    score: float


def robust_score(value: float, baseline: Sequence[float]) -> tuple[float, float, float]:
    """(median, MAD, score) of `value` against `baseline` (not empty)."""
    median = statistics.median(baseline)
    mad = statistics.median(abs(each - median) for each in baseline)
    return median, mad, (value - median) / max(MAD_SCALE * mad, MIN_SCALE)


def _counts(point: Point | None) -> bool:
    return point is not None and point.value is not None and point.denominator >= MIN_DENOMINATOR


def judge(metric: str, step_key: str, day: date, series: dict[date, Point]) -> Finding | None:
    """A Finding when `day` of `series` is anomalous in the metric's bad direction, else None
    (too little volume on the day or in the window, or within the threshold, or an improvement)."""
    today = series.get(day)
    if not _counts(today):
        return None
    baseline = [
        point.value
        for offset in range(1, WINDOW_DAYS + 1)
        if _counts(point := series.get(day - timedelta(days=offset)))
    ]
    if len(baseline) < MIN_BASELINE_DAYS:
        return None
    median, mad, score = robust_score(today.value, baseline)
    if score * BAD_DIRECTION[metric] < THRESHOLD:
        return None
    return Finding(metric, step_key, day, today, median, mad, len(baseline), score)


def judged_days(*, workspace: Workspace, today: date) -> dict[str, date]:
    """The day each metric judges: drop-off the latest settled day; activation the latest mature
    day (its enrollments' activation window has closed, as activation_rate counts them)."""
    return {
        Metric.DROP_OFF_RATE_BY_STEP: today - timedelta(days=1 + DROP_OFF_SETTLE_DAYS),
        Metric.ACTIVATION_RATE: today - timedelta(days=activation_window_days(workspace=workspace) + 1),
    }


def _days(last: date) -> list[date]:
    return [last - timedelta(days=offset) for offset in range(WINDOW_DAYS, -1, -1)]


def _day_query(workspace: Workspace, path_version: PathVersion, day: date) -> RollupQuery:
    return RollupQuery(workspace, day, day, (path_version.pk,))


def drop_off_series(
    *, workspace: Workspace, path_version: PathVersion, last: date
) -> dict[str, dict[date, Point]]:
    """{step key: {day: Point}} over the window ending on `last`, by drop_off_rate_by_step."""
    series: dict[str, dict[date, Point]] = {}
    for day in _days(last):
        found = rollup_metrics.drop_off_rate_by_step(_day_query(workspace, path_version, day))
        for step_key, each in found.extra.get("steps", {}).items():
            series.setdefault(step_key, {})[day] = Point(
                each["value"], each["numerator"], each["denominator"]
            )
    return series


def activation_series(
    *, workspace: Workspace, path_version: PathVersion, last: date, now: datetime
) -> dict[date, Point]:
    """{day: Point} over the window ending on `last`, by activation_rate (mature days only)."""
    series = {}
    for day in _days(last):
        found = rollup_metrics.activation_rate(_day_query(workspace, path_version, day), now=now)
        series[day] = Point(found.value, found.numerator or 0, found.denominator or 0)
    return series
