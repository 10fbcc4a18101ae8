"""The rollup rows of stored facts: one GROUP BY per rollup table in the database, over the facts
of whole slices (the rebuild: millions of facts, never loaded into Python). The refresh sums the
same counts in Python over the few fact rows that changed (increments.differences_of_facts);
tests/analytics/test_rollup_facts.py checks that refreshes and a rebuild from scratch store the
same rows.

Rows are keyed (day, persona, signup_source, company_size, use_case) and, for steps, the step key;
bucket rows add the bucket; they come grouped by path version. Only keys with something to count.
"""

from collections import defaultdict
from dataclasses import dataclass, field

from django.db.models import Count, Q, QuerySet

from analytics.models import SEGMENT_FIELDS, EnrollmentFact, StepFact


@dataclass
class VersionRows:
    enrollments: dict[tuple, dict[str, int]] = field(default_factory=dict)
    activation_buckets: dict[tuple, int] = field(default_factory=dict)
    steps: dict[tuple, dict[str, int]] = field(default_factory=dict)
    step_buckets: dict[tuple, int] = field(default_factory=dict)


def _key(row: dict, *extra: str) -> tuple:
    return (row["day"], *(row[name] for name in SEGMENT_FIELDS), *(row[name] for name in extra))


def _grouped(queryset: QuerySet, *extra: str, **aggregates) -> list[dict]:
    return list(
        queryset.order_by().values("path_version_id", "day", *SEGMENT_FIELDS, *extra).annotate(**aggregates)
    )


def rows_of_facts(
    enrollment_facts: QuerySet[EnrollmentFact], step_facts: QuerySet[StepFact]
) -> dict[int, VersionRows]:
    """{path version id: its rollup rows} aggregated from the facts (four GROUP BYs)."""
    versions: dict[int, VersionRows] = defaultdict(VersionRows)
    for row in _grouped(
        enrollment_facts,
        enrolled=Count("pk"),
        started=Count("pk", filter=Q(started=True)),
        completed=Count("pk", filter=Q(completed=True)),
        activated=Count("pk", filter=Q(activated=True)),
    ):
        versions[row["path_version_id"]].enrollments[_key(row)] = {
            name: row[name] for name in ("enrolled", "started", "completed", "activated")
        }
    for row in _grouped(enrollment_facts.filter(activated=True), "activation_bucket", count=Count("pk")):
        versions[row["path_version_id"]].activation_buckets[_key(row, "activation_bucket")] = row["count"]
    for row in _grouped(
        step_facts,
        "step_key",
        entered=Count("pk"),
        advanced=Count("pk", filter=Q(advanced=True)),
        completed=Count("pk", filter=Q(completed=True)),
    ):
        versions[row["path_version_id"]].steps[_key(row, "step_key")] = {
            name: row[name] for name in ("entered", "advanced", "completed")
        }
    for row in _grouped(step_facts.filter(bucket__isnull=False), "step_key", "bucket", count=Count("pk")):
        versions[row["path_version_id"]].step_buckets[_key(row, "step_key", "bucket")] = row["count"]
    return versions
