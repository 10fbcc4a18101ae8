"""The product dashboard: a path version's funnel with drop-off, activation and time to activation
per enrolment day, cohort retention as a heat map and the event funnel builder.

The funnel, the headline numbers and the trends come from the rollups (analytics.funnels,
analytics.funnels.trends). Cohorts and event funnels scan raw events, so they run only when
the admin asks (their forms), through analytics.events' services: statement timeout, and on
timeout the last result marked stale with its age.
"""

from django.http import HttpRequest
from django.urls import NoReverseMatch, reverse

from analytics.dashboards import tables as t
from analytics.dashboards.events import cohort_table, event_funnel_section
from analytics.dashboards.filters import DashboardFilters
from analytics.funnels import metrics as rollup_metrics
from analytics.funnels.path_funnel import path_funnel
from analytics.funnels.trends import (
    SECONDS_PER_HOUR,
    ActivationDistribution,
    DayTrend,
    activation_distribution,
    daily_trend,
)
from analytics.signals import selectors as signals_selectors
from analytics.signals.storage import signals_storage
from paths import selectors as paths_selectors
from paths.models import PathVersion

FUNNEL_COLUMNS = [
    t.Column("step", "step", t.TEXT),
    t.Column("title", "title", t.TEXT),
    t.Column("entered", "entered"),
    t.Column("advanced", "advanced past"),
    t.Column("completed", "completed"),
    t.Column("drop_off_rate", "drop-off", t.RATIO),
    t.Column("conversion_from_start", "conversion from start", t.RATIO),
    t.Column("median_seconds", "median time to complete", t.SECONDS),
    t.Column("p90_seconds", "p90 time to complete", t.SECONDS),
]


def funnel_version(filters: DashboardFilters) -> PathVersion | None:
    """The chosen version; else the chosen (or first) path's published version, else its newest."""
    if filters.version is not None:
        return filters.version
    path = (
        filters.path
        or paths_selectors.paths_for_workspace(workspace=filters.workspace).order_by("name").first()
    )
    if path is None:
        return None
    versions = paths_selectors.path_versions(workspace=filters.workspace, path=path)
    return versions.filter(status=PathVersion.Status.PUBLISHED).first() or versions.first()


def funnel_table(filters: DashboardFilters, version: PathVersion) -> t.Table:
    query = filters.rollup_query()
    rows = [
        [
            step.key,
            step.title,
            step.entered,
            step.advanced,
            step.completed,
            step.drop_off_rate,
            step.conversion_from_start,
            step.median_seconds_to_complete,
            step.p90_seconds_to_complete,
        ]
        for step in path_funnel(query, version)
    ]
    return t.Table(
        "funnel",
        f"Funnel of {version.path.name} v{version.number}",
        FUNNEL_COLUMNS,
        rows,
        chart=t.Chart(
            "step", ("entered", "completed"), "bar", "Enrollments entering and completing each step"
        ),
    )


def activation_tables(days: list[DayTrend], distribution: ActivationDistribution) -> list[t.Table]:
    activation = t.Table(
        "activation_trend",
        "Activation per enrolment day",
        [
            t.Column("day", "enrolment day", t.TEXT),
            t.Column("enrolled", "enrolled"),
            t.Column("activated", "activated"),
            t.Column("activation_rate", "activation rate", t.RATIO),
        ],
        [[day.day, day.enrolled, day.activated, day.activation_rate] for day in days],
        chart=t.Chart("day", ("activation_rate",), "line", "Activation rate per enrolment day"),
        note="Days whose activation window has not closed yet show a dash (pending, not counted).",
    )
    tta = t.Table(
        "tta_trend",
        "Time to activation per enrolment day",
        [
            t.Column("day", "enrolment day", t.TEXT),
            t.Column("tta_p50_hours", "p50 (hours)", t.HOURS),
            t.Column("tta_p90_hours", "p90 (hours)", t.HOURS),
        ],
        [[day.day, day.tta_p50_hours, day.tta_p90_hours] for day in days],
        chart=t.Chart("day", ("tta_p50_hours", "tta_p90_hours"), "line", "Time to activation p50 and p90"),
    )
    return [activation, tta, tta_distribution_table(distribution)]


def tta_distribution_table(distribution: ActivationDistribution) -> t.Table:
    """Time to activation over the whole range, a bar per log bucket (as the API answers it)."""
    bounds = [
        (b.lower_hours * SECONDS_PER_HOUR, b.upper_hours * SECONDS_PER_HOUR) for b in distribution.buckets
    ]
    return t.Table(
        "tta_distribution",
        "Time to activation distribution",
        [
            t.Column("range", "time to activation", t.TEXT),
            t.Column("from_seconds", "from", t.SECONDS),
            t.Column("to_seconds", "to (exclusive)", t.SECONDS),
            t.Column("activated", "activated"),
        ],
        [
            [f"{t.shown(low, t.SECONDS)} to {t.shown(high, t.SECONDS)}", low, high, bucket.count]
            for (low, high), bucket in zip(bounds, distribution.buckets, strict=True)
        ],
        chart=t.Chart("range", ("activated",), "bar", "Activated enrollments per time to activation"),
        note=f"{distribution.activated} activated within the window; eight log buckets per doubling.",
    )


def _signals_links(filters: DashboardFilters) -> dict[str, str | None]:
    """The signals reports page, and the workspace's latest report (newest day, else `all`)."""
    try:
        listing = reverse("signals-reports")
    except NoReverseMatch:
        return {"signals_url": None, "latest_signals_url": None, "latest_signals_label": None}
    labels = signals_selectors.report_labels(storage=signals_storage(), workspace_id=filters.workspace.pk)
    days = [label for label in labels if label != "all"]
    latest = days[0] if days else (labels[0] if labels else None)
    return {
        "signals_url": listing,
        "latest_signals_url": (
            reverse("signals-report-file", args=[filters.workspace.pk, latest, "report.html"])
            if latest
            else None
        ),
        "latest_signals_label": latest,
    }


def build(request: HttpRequest, filters: DashboardFilters) -> dict:
    version = funnel_version(filters)
    funnel = [funnel_table(filters, version)] if version is not None else []
    query = filters.rollup_query()
    days, distribution = daily_trend(query), activation_distribution(query)
    trends = activation_tables(days, distribution)
    cohorts, cohort_errors, cohort_state = cohort_table(request, filters)
    event_funnel, funnel_errors, funnel_state = event_funnel_section(request, filters)
    return {
        "headline": rollup_metrics.headline_from_trend(days, distribution),
        "funnel_version": version,
        "tables": [*funnel, *trends, *cohorts, *event_funnel],
        "funnel_tables": funnel,
        "trend_tables": trends,
        "cohort_tables": cohorts,
        "event_funnel_tables": event_funnel,
        "cohort_state": cohort_state,
        "funnel_state": funnel_state,
        "errors": {**cohort_errors, **funnel_errors},
        **_signals_links(filters),
    }
