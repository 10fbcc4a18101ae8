"""What an experiment's results are computed from, read with one GROUP BY query so that a
million assigned users never come into Python one by one.

The unit is the Assignment (one per user and experiment). Its conversion on the primary metric
activation_rate is analytics' own fact: EnrollmentFact.activated of the assignment's enrollment
(completed within the workspace's activation window, analytics/rollups/facts.py), counted only
once the enrollment completed by the time the results are taken at. An enrollment whose fact
the rollup refresh has not written yet (it runs every five minutes) counts as not activated yet
and is reported in `unrefreshed`: the experiment shows the numbers the dashboards show.

Grouped per arm by: the UTC day of assignment and the UTC day of activation (if any), whether
the enrollment started (onboarding_start_rate), runs on another arm's version (multiple
exposure), has no fact yet, or is still inside its activation window (pending); and the whole
hours (rounded to the second, then floored) after which the user activated, or at which they
are censored: min(at - enrolled_at, window), the time they have been seen not activated.
"""

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db import connection, transaction

from analytics.models import EnrollmentFact
from experiments.models import Assignment, Variant
from onboarding.models import Enrollment


@dataclass
class ArmCounts:
    users: int = 0
    conversions: int = 0
    started: int = 0
    unrefreshed: int = 0
    other_arm: int = 0
    pending: int = 0
    assigned_by_day: dict[date, int] = field(default_factory=lambda: defaultdict(int))
    converted_by_day: dict[date, int] = field(default_factory=lambda: defaultdict(int))
    # (hours, activated) -> users: the Kaplan-Meier input at hour resolution.
    durations: dict[tuple[int, bool], int] = field(default_factory=lambda: defaultdict(int))


def _table(model) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def _sql_parts() -> dict[str, str]:
    """The few expressions PostgreSQL and SQLite spell differently."""
    if connection.vendor == "postgresql":
        return {
            "assigned_day": "(a.assigned_at AT TIME ZONE 'UTC')::date",
            "completed_day": "(e.completed_at AT TIME ZONE 'UTC')::date",
            "seconds": "date_part('epoch', {end} - {start})",
            "least": "LEAST",
            "greatest": "GREATEST",
            "hours": "FLOOR(ROUND({seconds}) / 3600)::int",
        }
    return {
        "assigned_day": "date(a.assigned_at)",
        "completed_day": "date(e.completed_at)",
        "seconds": "((julianday({end}) - julianday({start})) * 86400.0)",
        "least": "MIN",
        "greatest": "MAX",
        "hours": "CAST(ROUND({seconds}) / 3600 AS INTEGER)",
    }


def _from_clause() -> str:
    return (
        f"FROM {_table(Assignment)} a "
        f"JOIN {_table(Variant)} v ON v.id = a.variant_id "
        f"LEFT JOIN {_table(Enrollment)} e ON e.id = a.enrollment_id "
        f"LEFT JOIN {_table(EnrollmentFact)} f ON f.enrollment_id = a.enrollment_id "
        "WHERE a.experiment_id = %s AND a.assigned_at <= %s"
    )


CONVERTED = "(f.activated AND e.completed_at <= %s)"
# For this one read, on PostgreSQL (measured at 1M assigned users, bench/experiment_results.py):
# JIT off (it compiles for longer than it saves here); work_mem to aggregate in memory (with the
# default 4 MB a million joined rows were sorted on disk: 2.2 s); and parallel workers made
# cheap enough that the planner uses them for the join and a partial aggregate (1.3 s -> 0.9 s
# with 2 cores). SET LOCAL: they end with the transaction.
PLANNER_SETTINGS = (
    "SET LOCAL jit = off",
    "SET LOCAL work_mem = '64MB'",
    "SET LOCAL parallel_setup_cost = 0",
    "SET LOCAL parallel_tuple_cost = 0.0001",
)


def _day(value) -> date:
    return date.fromisoformat(value) if isinstance(value, str) else value


def _statement() -> str:
    parts = _sql_parts()
    start = "COALESCE(e.enrolled_at, a.assigned_at)"
    activated_after = parts["seconds"].format(end="e.completed_at", start=start)
    seen_for = parts["seconds"].format(end="%s", start=start)
    censored_at = f"{parts['least']}({seen_for}, %s)"
    seconds = f"{parts['greatest']}(CASE WHEN {CONVERTED} THEN {activated_after} ELSE {censored_at} END, 0)"
    return (
        f"SELECT a.variant_id, {parts['assigned_day']}, "
        f"CASE WHEN {CONVERTED} THEN {parts['completed_day']} END, "
        "CASE WHEN f.started THEN 1 ELSE 0 END, "
        "CASE WHEN f.enrollment_id IS NULL AND a.enrollment_id IS NOT NULL THEN 1 ELSE 0 END, "
        "CASE WHEN e.path_version_id <> v.path_version_id THEN 1 ELSE 0 END, "
        f"CASE WHEN {start} > %s THEN 1 ELSE 0 END, "
        f"{parts['hours'].format(seconds=seconds)}, COUNT(*) "
        f"{_from_clause()} GROUP BY 1, 2, 3, 4, 5, 6, 7, 8"
    )


def _rows(experiment_id: int, at, mature_before, window_seconds: float) -> list[tuple]:
    """One scan of the assignments joined to their enrollments and facts (PLANNER_SETTINGS)."""
    parameters = [at, mature_before, at, at, window_seconds, experiment_id, at]
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for setting in PLANNER_SETTINGS:
                cursor.execute(setting)
        cursor.execute(_statement(), parameters)
        return cursor.fetchall()


def arm_counts(
    *, experiment_id: int, variant_ids: list[int], at: datetime, window_days: int, survival: bool = True
) -> dict[int, ArmCounts]:
    """The counts of every arm (an arm without users has zeros) as of ``at``."""
    counts = {variant_id: ArmCounts() for variant_id in variant_ids}
    at_value = connection.ops.adapt_datetimefield_value(at)
    mature_before = connection.ops.adapt_datetimefield_value(at - timedelta(days=window_days))
    rows = _rows(experiment_id, at_value, mature_before, window_days * 86400.0)
    for variant_id, assigned_day, converted_day, started, unrefreshed, other_arm, young, hours, users in rows:
        arm = counts[variant_id]
        arm.users += users
        arm.assigned_by_day[_day(assigned_day)] += users
        if converted_day is not None:
            arm.conversions += users
            arm.converted_by_day[_day(converted_day)] += users
        elif young:
            arm.pending += users
        arm.started += users if started else 0
        arm.unrefreshed += users if unrefreshed else 0
        arm.other_arm += users if other_arm else 0
        if survival:
            arm.durations[(int(hours), converted_day is not None)] += users
    return counts
