"""A path version's funnel, read from the step rollups (never from raw rows): per step in order,
how many enrollments entered it, advanced past it, completed it, the drop-off, the conversion
from the start, and the median and p90 time to complete (from the log buckets, within 4.5%).

- drop_off_rate = (entered - advanced) / entered
- conversion_from_start = advanced past this step / entered the first step
- time to complete: from entering the step (enrolment for the first step, else the previous
  step's completion) to completing it; skips are not timed.
"""

from dataclasses import dataclass

from django.db.models import Sum

from analytics.funnels.query import RollupQuery
from analytics.models import StepRollup, StepTimeBucket
from analytics.rollups.buckets import merged, quantile_seconds
from paths import selectors as paths_selectors
from paths.models import PathVersion


@dataclass(frozen=True)
class FunnelStep:
    key: str
    title: str
    entered: int
    advanced: int
    completed: int
    drop_off_rate: float | None
    conversion_from_start: float | None
    median_seconds_to_complete: float | None
    p90_seconds_to_complete: float | None


def ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def step_totals(query: RollupQuery) -> dict[str, dict[str, int]]:
    """{step key: {entered, advanced, completed}} summed over the query's rows."""
    rows = (
        StepRollup.objects.filter(query.rows(StepRollup))
        .values("step_key")
        .annotate(entered=Sum("entered"), advanced=Sum("advanced"), completed=Sum("completed"))
        .order_by()
    )
    return {row.pop("step_key"): row for row in rows}


def step_time_buckets(query: RollupQuery) -> dict[str, dict[int, int]]:
    rows = (
        StepTimeBucket.objects.filter(query.rows(StepTimeBucket))
        .values("step_key", "bucket")
        .annotate(total=Sum("count"))
        .order_by()
    )
    by_step: dict[str, list[tuple[int, int]]] = {}
    for row in rows:
        by_step.setdefault(row["step_key"], []).append((row["bucket"], row["total"]))
    return {step_key: merged(pairs) for step_key, pairs in by_step.items()}


def path_funnel(query: RollupQuery, path_version: PathVersion) -> list[FunnelStep]:
    """The funnel of one version; `query.path_version_ids` is narrowed to it."""
    query = RollupQuery(query.workspace, query.date_from, query.date_to, (path_version.pk,), query.segments)
    totals = step_totals(query)
    buckets = step_time_buckets(query)
    steps = list(paths_selectors.steps_of_version(workspace=query.workspace, path_version=path_version))
    started = totals.get(steps[0].key, {}).get("entered") or 0 if steps else 0
    funnel = []
    for step in steps:
        counts = totals.get(step.key) or {"entered": 0, "advanced": 0, "completed": 0}
        times = buckets.get(step.key, {})
        funnel.append(
            FunnelStep(
                key=step.key,
                title=step.title,
                entered=counts["entered"],
                advanced=counts["advanced"],
                completed=counts["completed"],
                drop_off_rate=ratio(counts["entered"] - counts["advanced"], counts["entered"]),
                conversion_from_start=ratio(counts["advanced"], started),
                median_seconds_to_complete=quantile_seconds(times, 0.5),
                p90_seconds_to_complete=quantile_seconds(times, 0.9),
            )
        )
    return funnel
