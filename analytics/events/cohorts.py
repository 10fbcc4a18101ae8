"""Cohort retention and activation cohorts, aggregated in SQL.

Retention: end users who signed up (EndUser.created_at) or first enrolled (their first
Enrollment.enrolled_at) in the range, with the segment traits they have now, grouped by the UTC
week (Monday to Sunday) of that moment; a user is retained in week k (0 = the cohort's own week,
the whole of it, also the days before the range's first) when they have any event, or an event of
the chosen name, in the k-th calendar week after it (by event timestamp). Activation cohorts:
enrollments grouped by the week they were enrolled in, and how many have completed their path so
far, cumulated per week since.

"Any event" is read from the cohort matrices (CohortCount: analytics/events/rollups.py, refreshed
every five minutes), so it is as fresh as they are;
a chosen event name is read from the events (event_funnel_idx serves it). Activation cohorts are
read from EnrollmentFact (analytics/rollups/facts.py, refreshed with the enrollment rollups).
"""

import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from django.db.models import Count, Sum

from analytics.events import raw
from analytics.models import SEGMENT_FIELDS, CohortCount, EnrollmentFact
from onboarding.ingestion import selectors as event_selectors
from onboarding.progress import selectors as enrollment_selectors
from tenancy import selectors as tenancy_selectors
from tenancy.models import Workspace

BY = ("signup", "enrollment")
MAX_WEEKS = 12


@dataclass(frozen=True)
class CohortQuery:
    workspace: Workspace
    by: str  # "signup" or "enrollment"
    weeks: int  # weeks since, 0..weeks
    start: datetime  # cohort members joined from here (inclusive)...
    end: datetime  # ...to here (exclusive: the day after `to`)
    event: str | None = None
    segment: dict[str, str] = field(default_factory=dict)


def _week_start_of(moment: datetime) -> datetime:
    """Midnight UTC of the Monday of `moment`'s week: a cohort's own week counts whole."""
    midnight = datetime.combine(moment.date(), datetime.min.time(), tzinfo=UTC)
    return midnight - timedelta(days=moment.weekday())


def _compiled(queryset) -> tuple[str, tuple]:
    return queryset.query.sql_with_params()


def _cohort_sql(query: CohortQuery) -> tuple[str, list[Any]]:
    """(end_user_id, cohort_week) of the cohorts' members."""
    if query.by == "signup":
        users_sql, users_params = _compiled(
            tenancy_selectors.end_users_in_segment(
                workspace=query.workspace,
                segment=query.segment,
                created_from=query.start,
                created_before=query.end,
            )
        )
        week = raw.week_number(raw.epoch_seconds("u.created_at"))
        return f"SELECT u.id AS end_user_id, {week} AS cohort_week FROM ({users_sql}) u", list(users_params)  # noqa: S608
    users_sql, users_params = _compiled(
        tenancy_selectors.end_users_in_segment(workspace=query.workspace, segment=query.segment)
    )
    first_sql, first_params = _compiled(
        enrollment_selectors.first_enrollment_times(
            workspace=query.workspace, start=query.start, end=query.end
        )
    )
    week = raw.week_number(raw.epoch_seconds("f.first_enrolled_at"))
    return (
        f"SELECT f.end_user_id, {week} AS cohort_week FROM ({first_sql}) f "  # noqa: S608
        f"JOIN ({users_sql}) u ON u.id = f.end_user_id",
        [*first_params, *users_params],
    )


def retention_statement(query: CohortQuery) -> tuple[str, list[Any]]:
    """Rows (cohort_week, weeks_since, users): weeks_since -1 carries the cohort's size."""
    cohort_sql, cohort_params = _cohort_sql(query)
    events_sql, events_params = _compiled(
        event_selectors.events_matching(
            workspace=query.workspace,
            name=query.event,
            start=_week_start_of(query.start),
            end=query.end + timedelta(weeks=query.weeks + 1),
        )
    )
    activity_week = raw.week_number(raw.epoch_seconds('q."timestamp"'))
    sql = (
        f"WITH cohort AS ({cohort_sql}),\n"  # noqa: S608
        f"activity AS (SELECT DISTINCT q.end_user_id, {activity_week} AS week FROM ({events_sql}) q)\n"
        "SELECT cohort_week, -1, COUNT(*) FROM cohort GROUP BY cohort_week\n"
        "UNION ALL\n"
        "SELECT c.cohort_week, a.week - c.cohort_week, COUNT(*) FROM cohort c JOIN activity a "
        "ON a.end_user_id = c.end_user_id AND a.week >= c.cohort_week AND a.week <= c.cohort_week + %s "
        "GROUP BY c.cohort_week, a.week - c.cohort_week"
    )
    return sql, [*cohort_params, *events_params, query.weeks]


def retention_rows_from_rollups(query: CohortQuery) -> list[tuple]:
    """retention_statement's rows for "any event", from the cohort matrices (CohortCount)."""
    kind = CohortCount.Kind.SIGNUP if query.by == "signup" else CohortCount.Kind.ENROLLMENT
    rows = (
        CohortCount.objects.filter(
            workspace=query.workspace,
            kind=kind,
            cohort_day__gte=query.start.date(),
            cohort_day__lt=query.end.date(),
            since__gte=CohortCount.SIZE,
            since__lte=query.weeks,
            **{trait: value for trait, value in query.segment.items() if trait in SEGMENT_FIELDS},
        )
        .values("cohort_week", "since")
        .annotate(total=Sum("users"))
        .filter(total__gt=0)
        .values_list("cohort_week", "since", "total")
        .order_by()
    )
    return list(rows)


def activation_statement(query: CohortQuery) -> tuple[str, list[Any]]:
    """Rows (cohort_week, weeks_since, enrollments): weeks_since -1 carries the cohort's size, the
    others the enrollments completed that many weeks after their enrolment week. The definition
    over the enrollments themselves; the API reads activation_rows_from_facts (the tests compare)."""
    enrollments_sql, enrollments_params = _compiled(
        enrollment_selectors.enrollments_enrolled_between(
            workspace=query.workspace, start=query.start, end=query.end
        )
    )
    users_sql, users_params = _compiled(
        tenancy_selectors.end_users_in_segment(workspace=query.workspace, segment=query.segment)
    )
    enrolled_week = raw.week_number(raw.epoch_seconds("e.enrolled_at"))
    completed_week = raw.week_number(raw.epoch_seconds("e.completed_at"))
    sql = (
        f"WITH enrolled AS (SELECT {enrolled_week} AS cohort_week, "  # noqa: S608
        "CASE WHEN e.status = 'completed' AND e.completed_at IS NOT NULL "
        f"THEN {completed_week} END AS completed_week "
        f"FROM ({enrollments_sql}) e JOIN ({users_sql}) u ON u.id = e.end_user_id)\n"
        "SELECT cohort_week, -1, COUNT(*) FROM enrolled GROUP BY cohort_week\n"
        "UNION ALL\n"
        "SELECT cohort_week, completed_week - cohort_week, COUNT(*) FROM enrolled "
        "WHERE completed_week IS NOT NULL GROUP BY cohort_week, completed_week - cohort_week"
    )
    return sql, [*enrollments_params, *users_params]


def _week_of_day(day: date) -> int:
    return raw.week_number_of(datetime.combine(day, datetime.min.time(), tzinfo=UTC).timestamp())


def activation_rows_from_facts(query: CohortQuery) -> list[tuple]:
    """activation_statement's rows, from EnrollmentFact (one row per enrollment, kept by the rollup
    refresh): enrollments per (enrolment day, completion day), then per week in Python."""
    per_days = (
        EnrollmentFact.objects.filter(
            workspace=query.workspace,
            day__gte=query.start.date(),
            day__lt=query.end.date(),
            **{trait: value for trait, value in query.segment.items() if trait in SEGMENT_FIELDS},
        )
        .values_list("day", "completed_day")
        .annotate(enrollments=Count("*"))
        .order_by()
    )
    counts: dict[tuple[int, int], int] = {}
    for day, completed_day, enrollments in per_days:
        week = _week_of_day(_as_date(day))
        counts[(week, -1)] = counts.get((week, -1), 0) + enrollments
        if completed_day is not None:
            since = _week_of_day(_as_date(completed_day)) - week
            counts[(week, since)] = counts.get((week, since), 0) + enrollments
    return [(week, since, enrollments) for (week, since), enrollments in counts.items()]


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _matrix(rows: list[tuple], *, weeks: int, current_week: int) -> dict[int, tuple[int, list[int | None]]]:
    """{cohort week: (size, counts per week since)}; a week that has not begun yet is None."""
    sizes: dict[int, int] = {}
    counts: dict[tuple[int, int], int] = {}
    for cohort_week, weeks_since, users in rows:
        if int(weeks_since) == -1:
            sizes[int(cohort_week)] = int(users)
        else:
            counts[(int(cohort_week), int(weeks_since))] = int(users)
    return {
        week: (
            size,
            [
                counts.get((week, since), 0) if week + since <= current_week else None
                for since in range(weeks + 1)
            ],
        )
        for week, size in sorted(sizes.items())
    }


def _share(count: int | None, size: int) -> float | None:
    return None if count is None or not size else round(count / size, 4)


def _cohorts_out(query: CohortQuery, retention: list[tuple], activation: list[tuple]) -> dict[str, Any]:
    current_week = raw.week_number_of(time.time())
    cohorts = [
        {
            "week_start": raw.week_start(week),
            "size": size,
            "retained": counts,
            "retention": [_share(count, size) for count in counts],
        }
        for week, (size, counts) in _matrix(retention, weeks=query.weeks, current_week=current_week).items()
    ]
    activation_cohorts = []
    for week, (size, completed) in _matrix(activation, weeks=query.weeks, current_week=current_week).items():
        activated = sum(
            int(count)
            for cohort_week, since, count in activation
            if int(cohort_week) == week and int(since) >= 0
        )
        cumulative, running = [], 0
        for count in completed:
            running += count or 0
            cumulative.append(None if count is None else running)
        activation_cohorts.append(
            {
                "week_start": raw.week_start(week),
                "enrollments": size,
                "activated": activated,
                "activation_share": _share(activated, size),
                "activated_by_week": cumulative,
                "activated_share_by_week": [_share(count, size) for count in cumulative],
            }
        )
    return {"cohorts": cohorts, "activation": activation_cohorts}


def parameters_of(query: CohortQuery) -> dict[str, Any]:
    return {
        "by": query.by,
        "event": query.event,
        "weeks": query.weeks,
        "from": query.start.date().isoformat(),
        "to": (query.end - timedelta(days=1)).date().isoformat(),
        "segment": dict(sorted(query.segment.items())),
    }


def cohort_retention(query: CohortQuery) -> dict[str, Any]:
    """Retention and activation cohorts, fresh or (on timeout) the last cached, marked stale."""
    retention_sql, retention_params = retention_statement(query)

    def compute(cursor) -> dict[str, Any]:
        if query.event is None:
            retention = retention_rows_from_rollups(query)
        else:
            cursor.execute(retention_sql, retention_params)
            retention = cursor.fetchall()
        return _cohorts_out(query, retention, activation_rows_from_facts(query))

    return raw.cached_or_fresh(
        workspace=query.workspace, kind="cohorts", parameters=parameters_of(query), compute=compute
    )
