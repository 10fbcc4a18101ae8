"""The rollup rows of one path version over some enrolment days, aggregated in the database from
the source (through onboarding's selectors): a handful of GROUP BY queries per version, whatever
the number of enrollments.

Rows are keyed (day, persona, signup_source, company_size, use_case) and, for steps, the step key;
bucket rows add the bucket. Only keys with something to count are returned.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from itertools import pairwise

from django.db.models import (
    BooleanField,
    Case,
    CharField,
    Count,
    Exists,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import TruncDate

from analytics.models import SEGMENT_FIELDS
from analytics.rollups.expressions import LogBucket, SecondsBetween
from onboarding.models import Enrollment, StepCompletion
from onboarding.progress import selectors as progress_selectors
from paths.models import Step
from tenancy.models import Workspace

SKIP = StepCompletion.Method.SKIP


@dataclass
class VersionRows:
    enrollments: dict[tuple, dict[str, int]]
    activation_buckets: dict[tuple, int]
    steps: dict[tuple, dict[str, int]]
    step_buckets: dict[tuple, int]


def _day_bounds(days: set[date]) -> tuple[datetime, datetime]:
    return (
        datetime.combine(min(days), time.min, tzinfo=UTC),
        datetime.combine(max(days) + timedelta(days=1), time.min, tzinfo=UTC),
    )


def _enrollments(workspace: Workspace, path_version_id: int, days: set[date]) -> QuerySet[Enrollment]:
    start, end = _day_bounds(days)
    return (
        progress_selectors.enrollments_of_workspace(workspace=workspace)
        .filter(path_version_id=path_version_id, enrolled_at__gte=start, enrolled_at__lt=end)
        .annotate(day=TruncDate("enrolled_at", tzinfo=UTC))
        .annotate(**{name: F(f"end_user__{name}") for name in SEGMENT_FIELDS})
        .filter(day__in=sorted(days))
        .order_by()
    )


def _key(row: dict, *extra: str) -> tuple:
    return (row["day"], *(row[name] or "" for name in SEGMENT_FIELDS), *(row[name] for name in extra))


def enrollment_rows(
    workspace: Workspace, path_version_id: int, days: set[date], window_days: int
) -> tuple[dict[tuple, dict[str, int]], dict[tuple, int]]:
    enrollments = _enrollments(workspace, path_version_id, days)
    started = progress_selectors.step_completions_active(workspace=workspace).filter(
        enrollment=OuterRef("pk")
    )
    activated = Q(status=Enrollment.Status.COMPLETED, completed_at__isnull=False) & Q(
        completed_at__lte=F("enrolled_at") + timedelta(days=window_days)
    )
    counts = enrollments.values("day", *SEGMENT_FIELDS).annotate(
        enrolled=Count("pk"),
        started=Count("pk", filter=Q(Exists(started))),
        completed=Count("pk", filter=Q(status=Enrollment.Status.COMPLETED, completed_at__isnull=False)),
        activated=Count("pk", filter=activated),
    )
    buckets = (
        enrollments.filter(activated)
        .annotate(bucket=LogBucket(SecondsBetween(F("completed_at"), F("enrolled_at"))))
        .values("day", *SEGMENT_FIELDS, "bucket")
        .annotate(count=Count("pk"))
    )
    rows = {
        _key(row): {name: row[name] for name in ("enrolled", "started", "completed", "activated")}
        for row in counts
    }
    return rows, {_key(row, "bucket"): row["count"] for row in buckets}


def _completions(workspace: Workspace, path_version_id: int, days: set[date], steps: list[Step]) -> QuerySet:
    """The version's non-reverted completions with their enrollment's day and segment, and
    whether (and when) the enrollment entered the step."""
    start, end = _day_bounds(days)
    active = progress_selectors.step_completions_active(workspace=workspace)
    previous_key = Case(
        *[When(step_key=step.key, then=Value(before.key)) for before, step in pairwise(steps)],
        default=Value(""),
        output_field=CharField(),
    )
    previous = active.filter(enrollment=OuterRef("enrollment"), step_key=OuterRef("previous_key"))
    first_key = steps[0].key
    return (
        active.filter(
            enrollment__path_version_id=path_version_id,
            enrollment__enrolled_at__gte=start,
            enrollment__enrolled_at__lt=end,
        )
        .annotate(day=TruncDate("enrollment__enrolled_at", tzinfo=UTC))
        .annotate(**{name: F(f"enrollment__end_user__{name}") for name in SEGMENT_FIELDS})
        .filter(day__in=sorted(days))
        .annotate(previous_key=previous_key)
        .annotate(
            entered=Case(
                When(step_key=first_key, then=Value(True)),
                When(Exists(previous), then=Value(True)),
                default=Value(False),
                output_field=BooleanField(),
            ),
            entered_at=Case(
                When(step_key=first_key, then=F("enrollment__enrolled_at")),
                default=Subquery(previous.values("completed_at")[:1]),
            ),
        )
        .order_by()
    )


def step_rows(
    workspace: Workspace,
    path_version_id: int,
    days: set[date],
    steps: list[Step],
    enrolled: dict[tuple, dict[str, int]],
) -> tuple[dict[tuple, dict[str, int]], dict[tuple, int]]:
    if not steps:
        return {}, {}
    completions = _completions(workspace, path_version_id, days, steps)
    counts = completions.values("day", *SEGMENT_FIELDS, "step_key").annotate(
        advanced_any=Count("pk"),
        advanced=Count("pk", filter=Q(entered=True)),
        completed=Count("pk", filter=Q(entered=True) & ~Q(method=SKIP)),
    )
    buckets = (
        completions.filter(entered=True)
        .exclude(method=SKIP)
        .annotate(bucket=LogBucket(SecondsBetween(F("completed_at"), F("entered_at"))))
        .values("day", *SEGMENT_FIELDS, "step_key", "bucket")
        .annotate(count=Count("pk"))
    )
    by_step = {_key(row, "step_key"): row for row in counts}
    rows: dict[tuple, dict[str, int]] = {}
    for segment_key, enrollment_counts in enrolled.items():
        entered = enrollment_counts["enrolled"]
        for step in steps:
            found = by_step.get((*segment_key, step.key), {})
            advanced, completed = found.get("advanced", 0), found.get("completed", 0)
            if entered or advanced:
                rows[(*segment_key, step.key)] = {
                    "entered": entered,
                    "advanced": advanced,
                    "completed": completed,
                }
            entered = found.get("advanced_any", 0)
    return rows, {_key(row, "step_key", "bucket"): row["count"] for row in buckets}


def version_rows(
    workspace: Workspace, path_version_id: int, days: set[date], steps: list[Step], window_days: int
) -> VersionRows:
    enrollments, activation_buckets = enrollment_rows(workspace, path_version_id, days, window_days)
    steps_counts, step_buckets = step_rows(workspace, path_version_id, days, steps, enrollments)
    return VersionRows(enrollments, activation_buckets, steps_counts, step_buckets)
