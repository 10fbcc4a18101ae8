"""The enrollment metrics of analytics.metrics.definitions, computed from the rollups: the same
numbers the API, the dashboards and /metrics show.

Activation maturity is judged per rollup day: a day's enrollments are mature once the day's end
plus N days has passed (N: the workspace's activation window). The younger ones are `pending`.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.db.models import Sum
from django.utils import timezone

from analytics.funnels.path_funnel import ratio, step_totals
from analytics.funnels.query import RollupQuery
from analytics.funnels.trends import ActivationDistribution, DayTrend
from analytics.models import ActivationTimeBucket, EnrollmentRollup
from analytics.rollups.buckets import merged, quantile_seconds
from analytics.rollups.services import activation_window_days

SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class MetricValue:
    value: float | None
    numerator: int | None = None
    denominator: int | None = None
    pending: int | None = None
    extra: dict = field(default_factory=dict)


def _enrollment_sums(query: RollupQuery, **extra_filter) -> dict[str, int]:
    found = EnrollmentRollup.objects.filter(query.rows(EnrollmentRollup), **extra_filter).aggregate(
        enrolled=Sum("enrolled"), started=Sum("started"), activated=Sum("activated")
    )
    return {name: number or 0 for name, number in found.items()}


def onboarding_start_rate(query: RollupQuery) -> MetricValue:
    sums = _enrollment_sums(query)
    return MetricValue(ratio(sums["started"], sums["enrolled"]), sums["started"], sums["enrolled"])


def activation_rate(query: RollupQuery, *, now: datetime | None = None) -> MetricValue:
    window_days = activation_window_days(workspace=query.workspace)
    last_mature_day = (now or timezone.now()).date() - timedelta(days=window_days + 1)
    mature = _enrollment_sums(query, day__lte=last_mature_day)
    pending = _enrollment_sums(query, day__gt=last_mature_day)["enrolled"]
    return MetricValue(
        ratio(mature["activated"], mature["enrolled"]),
        mature["activated"],
        mature["enrolled"],
        pending=pending,
        extra={"activation_window_days": window_days},
    )


def _time_to_activation(query: RollupQuery, quantile: float) -> MetricValue:
    rows = (
        ActivationTimeBucket.objects.filter(query.rows(ActivationTimeBucket))
        .values("bucket")
        .annotate(total=Sum("count"))
        .order_by()
    )
    counts = merged((row["bucket"], row["total"]) for row in rows)
    seconds = quantile_seconds(counts, quantile)
    return MetricValue(
        seconds / SECONDS_PER_HOUR if seconds is not None else None,
        denominator=sum(counts.values()),
        extra={"activation_window_days": activation_window_days(workspace=query.workspace)},
    )


def time_to_activation_p50_hours(query: RollupQuery) -> MetricValue:
    return _time_to_activation(query, 0.5)


def time_to_activation_p90_hours(query: RollupQuery) -> MetricValue:
    return _time_to_activation(query, 0.9)


def _rate(numerator: int, denominator: int) -> MetricValue:
    return MetricValue(ratio(numerator, denominator), numerator, denominator)


def _per_step(query: RollupQuery, step_key: str | None, numerator_of) -> MetricValue:
    totals = step_totals(query)
    steps = {
        key: MetricValue(
            ratio(numerator_of(counts), counts["entered"]), numerator_of(counts), counts["entered"]
        )
        for key, counts in totals.items()
    }
    if step_key is not None:
        found = totals.get(step_key)
        if found is None:
            return MetricValue(None, 0, 0)
        return steps[step_key]
    numerator = sum(numerator_of(counts) for counts in totals.values())
    denominator = sum(counts["entered"] for counts in totals.values())
    by_step = {
        key: {"value": each.value, "numerator": each.numerator, "denominator": each.denominator}
        for key, each in steps.items()
    }
    return MetricValue(ratio(numerator, denominator), numerator, denominator, extra={"steps": by_step})


def step_completion_rate(query: RollupQuery, *, step_key: str | None = None) -> MetricValue:
    """Completed / entered for the step; without one, summed over the steps (with `steps`)."""
    return _per_step(query, step_key, lambda counts: counts["completed"])


def drop_off_rate_by_step(query: RollupQuery, *, step_key: str | None = None) -> MetricValue:
    """(entered - advanced) / entered for the step; without one, summed over the steps (with `steps`)."""
    return _per_step(query, step_key, lambda counts: counts["entered"] - counts["advanced"])


def headline_from_trend(days: list[DayTrend], distribution: ActivationDistribution) -> dict[str, MetricValue]:
    """activation_rate, time_to_activation_p50/p90_hours and onboarding_start_rate of the range,
    the same values, summed from what the Product page has already read (the per-day trend and the
    time-to-activation distribution of the same query) instead of five more rollup queries."""
    window = {"activation_window_days": days[0].window_days} if days else {}
    mature = [day for day in days if day.mature]
    activated = sum(day.activated or 0 for day in mature)
    mature_enrolled = sum(day.enrolled for day in mature)
    enrolled = sum(day.enrolled for day in days)
    started = sum(day.started for day in days)
    return {
        "activation": MetricValue(
            ratio(activated, mature_enrolled),
            activated,
            mature_enrolled,
            pending=enrolled - mature_enrolled,
            extra=window,
        ),
        "tta_p50": MetricValue(distribution.p50_hours, denominator=distribution.activated, extra=window),
        "tta_p90": MetricValue(distribution.p90_hours, denominator=distribution.activated, extra=window),
        "starts": MetricValue(ratio(started, enrolled), started, enrolled),
    }
