"""Per enrolment day, from the rollups in two GROUP BY queries: enrolled, started, the start rate,
activation (mature days only, as analytics.funnels.metrics.activation_rate counts it: a day is
mature once its end plus the workspace's activation window has passed) and time to activation
p50 / p90 (from the days' log buckets, as time_to_activation_p50_hours computes it); and the
time-to-activation distribution over the whole range. One query, two callers: the Product
dashboard and GET /api/v1/analytics/activation read these functions, so their numbers agree."""

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Sum
from django.utils import timezone

from analytics.funnels.path_funnel import ratio
from analytics.funnels.query import RollupQuery
from analytics.models import ActivationTimeBucket, EnrollmentRollup
from analytics.rollups.buckets import BUCKETS_PER_DOUBLING, merged, quantile_seconds
from analytics.rollups.services import activation_window_days

SECONDS_PER_HOUR = 3600


@dataclass(frozen=True)
class DayTrend:
    day: date
    enrolled: int
    started: int
    start_rate: float | None
    mature: bool  # the day's activation window has closed
    activated: int | None  # None while the day is not mature (its enrollments are pending)
    activation_rate: float | None
    tta_p50_hours: float | None
    tta_p90_hours: float | None
    window_days: int  # the workspace's activation window that judged `mature`


def _hours(counts: dict[int, int], quantile: float) -> float | None:
    seconds = quantile_seconds(counts, quantile)
    return None if seconds is None else seconds / SECONDS_PER_HOUR


def daily_trend(query: RollupQuery, *, now: datetime | None = None) -> list[DayTrend]:
    """One row per day of the range, zero on days without enrollments."""
    window_days = activation_window_days(workspace=query.workspace)
    last_mature_day = (now or timezone.now()).date() - timedelta(days=window_days + 1)
    sums = {
        row["day"]: row
        for row in EnrollmentRollup.objects.filter(query.rows(EnrollmentRollup))
        .values("day")
        .annotate(enrolled=Sum("enrolled"), started=Sum("started"), activated=Sum("activated"))
        .order_by()
    }
    buckets: dict[date, list[tuple[int, int]]] = {}
    for row in (
        ActivationTimeBucket.objects.filter(query.rows(ActivationTimeBucket))
        .values("day", "bucket")
        .annotate(total=Sum("count"))
        .order_by()
    ):
        buckets.setdefault(row["day"], []).append((row["bucket"], row["total"]))
    days = []
    for offset in range((query.date_to - query.date_from).days + 1):
        day = query.date_from + timedelta(days=offset)
        row = sums.get(day, {"enrolled": 0, "started": 0, "activated": 0})
        mature = day <= last_mature_day
        times = merged(buckets.get(day, []))
        days.append(
            DayTrend(
                day=day,
                enrolled=row["enrolled"],
                started=row["started"],
                start_rate=ratio(row["started"], row["enrolled"]),
                mature=mature,
                activated=row["activated"] if mature else None,
                activation_rate=ratio(row["activated"], row["enrolled"]) if mature else None,
                tta_p50_hours=_hours(times, 0.5),
                tta_p90_hours=_hours(times, 0.9),
                window_days=window_days,
            )
        )
    return days


@dataclass(frozen=True)
class DurationBucket:
    """One log bucket of the distribution: durations in [lower, upper) hours."""

    bucket: int
    lower_hours: float
    upper_hours: float
    count: int


@dataclass(frozen=True)
class ActivationDistribution:
    buckets: list[DurationBucket]  # the non-empty buckets, shortest first
    activated: int
    p50_hours: float | None
    p90_hours: float | None


def activation_distribution(query: RollupQuery) -> ActivationDistribution:
    """Time to activation over the whole range, per log bucket (analytics.rollups.buckets), with
    the p50 and p90 read from the same counts as time_to_activation_p50_hours: one GROUP BY."""
    rows = (
        ActivationTimeBucket.objects.filter(query.rows(ActivationTimeBucket))
        .values("bucket")
        .annotate(total=Sum("count"))
        .order_by()
    )
    counts = merged((row["bucket"], row["total"]) for row in rows)
    buckets = [
        DurationBucket(
            bucket=bucket,
            lower_hours=2 ** (bucket / BUCKETS_PER_DOUBLING) / SECONDS_PER_HOUR,
            upper_hours=2 ** ((bucket + 1) / BUCKETS_PER_DOUBLING) / SECONDS_PER_HOUR,
            count=count,
        )
        for bucket, count in sorted(counts.items())
        if count
    ]
    return ActivationDistribution(buckets, sum(counts.values()), _hours(counts, 0.5), _hours(counts, 0.9))
