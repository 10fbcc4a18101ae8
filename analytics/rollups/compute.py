"""The rollup rows of one path version over some enrolment days, aggregated in the database from
the source (through onboarding's selectors): one GROUP BY over the enrollments with each step's
completion LEFT JOINed (unique per enrollment and step, so no row is multiplied), plus one query
per step for the time buckets and one for activation; never a row per enrollment in Python.

Rows are keyed (day, persona, signup_source, company_size, use_case) and, for steps, the step key;
bucket rows add the bucket. Only keys with something to count are returned.
"""

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from django.db.models import Count, F, FilteredRelation, Q, QuerySet
from django.db.models.functions import TruncDate

from analytics.models import SEGMENT_FIELDS
from analytics.rollups.expressions import LogBucket, SecondsBetween
from onboarding.models import Enrollment, StepCompletion
from onboarding.progress import selectors as progress_selectors
from paths.models import Step
from tenancy.models import Workspace

SKIP = StepCompletion.Method.SKIP
ENROLLMENT_COUNTS = ("enrolled", "started", "completed", "activated")


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


def _activation_buckets(enrollments: QuerySet[Enrollment], activated: Q) -> dict[tuple, int]:
    rows = (
        enrollments.filter(activated)
        .annotate(bucket=LogBucket(SecondsBetween(F("completed_at"), F("enrolled_at"))))
        .values("day", *SEGMENT_FIELDS, "bucket")
        .annotate(count=Count("pk"))
    )
    return {_key(row, "bucket"): row["count"] for row in rows}


def _with_step_completions(enrollments: QuerySet[Enrollment], steps: list[Step]) -> QuerySet[Enrollment]:
    """Each enrollment with its non-reverted completion of each step joined as `step_<i>` (at
    most one row each: a completion is unique per enrollment and step), so "entered" (the step
    before advanced past) is a column test, not a correlated subquery per completion."""
    return enrollments.annotate(
        **{
            f"step_{index}": FilteredRelation(
                "completions",
                condition=Q(completions__step_key=step.key, completions__reverted_at__isnull=True),
            )
            for index, step in enumerate(steps)
        }
    )


def _done(index: int) -> Q:
    return Q(**{f"step_{index}__id__isnull": False})


def _entered(index: int) -> Q:
    return Q() if index == 0 else _done(index - 1)


def _step_aggregates(steps: list[Step]) -> dict[str, Count]:
    aggregates = {}
    for index in range(len(steps)):
        advanced = _entered(index) & _done(index)
        not_skipped = ~Q(**{f"step_{index}__method": SKIP})
        aggregates[f"entered_{index}"] = Count("pk", filter=_entered(index)) if index else Count("pk")
        aggregates[f"advanced_{index}"] = Count("pk", filter=advanced)
        aggregates[f"completed_{index}"] = Count("pk", filter=advanced & not_skipped)
    return aggregates


def _started(steps: list[Step]) -> Count:
    """Enrollments with a non-reverted completion: of one of the version's steps, which are all
    the steps it can have (a published version is immutable)."""
    any_done = Q()
    for index in range(len(steps)):
        any_done |= _done(index)
    return Count("pk", filter=any_done if steps else Q(pk__isnull=True))


def version_rows(
    workspace: Workspace, path_version_id: int, days: set[date], steps: list[Step], window_days: int
) -> VersionRows:
    """Enrollment and step counts in one GROUP BY over the enrollments with their step
    completions joined; the time buckets in one more query per step and one for activation."""
    enrollments = _enrollments(workspace, path_version_id, days)
    joined = _with_step_completions(enrollments, steps)
    completed = Q(status=Enrollment.Status.COMPLETED, completed_at__isnull=False)
    activated = completed & Q(completed_at__lte=F("enrolled_at") + timedelta(days=window_days))
    counts = joined.values("day", *SEGMENT_FIELDS).annotate(
        enrolled=Count("pk"),
        started=_started(steps),
        completed=Count("pk", filter=completed),
        activated=Count("pk", filter=activated),
        **_step_aggregates(steps),
    )
    enrollment_counts: dict[tuple, dict[str, int]] = {}
    step_counts: dict[tuple, dict[str, int]] = {}
    for row in counts:
        key = _key(row)
        enrollment_counts[key] = {
            name: row[name] for name in ("enrolled", "started", "completed", "activated")
        }
        for index, step in enumerate(steps):
            if row[f"entered_{index}"]:
                step_counts[(*key, step.key)] = {
                    name: row[f"{name}_{index}"] for name in ("entered", "advanced", "completed")
                }
    return VersionRows(
        enrollment_counts,
        _activation_buckets(enrollments, activated),
        step_counts,
        _step_buckets(joined, steps),
    )


def _step_buckets(enrollments: QuerySet[Enrollment], steps: list[Step]) -> dict[tuple, int]:
    """Completions (not skips) of entered steps per time-to-complete bucket: one query per step."""
    buckets: dict[tuple, int] = {}
    for index, step in enumerate(steps):
        entered_at = F(f"step_{index - 1}__completed_at") if index else F("enrolled_at")
        timed = (
            enrollments.filter(_entered(index) & _done(index))
            .exclude(**{f"step_{index}__method": SKIP})
            .annotate(bucket=LogBucket(SecondsBetween(F(f"step_{index}__completed_at"), entered_at)))
            .values("day", *SEGMENT_FIELDS, "bucket")
            .annotate(count=Count("pk"))
        )
        for row in timed:
            buckets[(*_key(row), step.key, row["bucket"])] = row["count"]
    return buckets
