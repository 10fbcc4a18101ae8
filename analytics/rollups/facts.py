"""What each enrollment contributes to the rollups, the one definition of the rollups' counts
(docs/analytics.md): an EnrollmentFact per enrollment and a StepFact per step it entered.

- started: a step of the version advanced past (a non-reverted completion, skip included);
- completed: status completed with a completion time; activated: completed within the
  workspace's activation window of N days, with the time to activation's log bucket;
- a step is entered when it is the first one or the step before it was advanced past; advanced:
  its own non-reverted completion; completed: advanced and not a skip, with the time from
  entering it (enrolment, else the previous step's completion) to its completion's log bucket.

Computed in Python from two queries per batch (the enrollments with their end users' segment
fields, then their non-reverted completions): the rebuild and the incremental
refresh both go through `facts_of_enrollments`, and the rollups are GROUP BYs over the facts
(aggregate.py).
"""

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db import connection
from django.db.models import F

from analytics.models import SEGMENT_FIELDS, EnrollmentFact, StepFact
from analytics.rollups.buckets import bucket_of
from core.db import bulk
from core.db.lookups import AnyOf
from onboarding.models import Enrollment, StepCompletion
from onboarding.progress import selectors as progress_selectors
from paths import selectors as paths_selectors
from tenancy.models import Workspace

SKIP = StepCompletion.Method.SKIP
COMPLETED = Enrollment.Status.COMPLETED
_BASE_FIELDS = ("enrollment_id", "workspace", "path_version", "day", *SEGMENT_FIELDS)
ENROLLMENT_FACT_FIELDS = (
    *_BASE_FIELDS,
    "started",
    "completed",
    "completed_day",
    "activated",
    "activation_bucket",
)
STEP_FACT_FIELDS = (*_BASE_FIELDS, "step_key", "advanced", "completed", "bucket")
_ENROLLMENT_COLUMNS = (
    "pk",
    "path_version_id",
    "enrolled_at",
    "status",
    "completed_at",
    *(f"end_user__{name}" for name in SEGMENT_FIELDS),
)


@dataclass
class Facts:
    """Rows in ENROLLMENT_FACT_FIELDS and STEP_FACT_FIELDS order."""

    enrollments: list[tuple] = field(default_factory=list)
    steps: list[tuple] = field(default_factory=list)
    step_ids: dict[tuple[int, str], int] = field(
        default_factory=dict
    )  # of stored steps, by (enrollment, key)


@dataclass
class _Enrollment:
    row: tuple
    done: dict[str, tuple[str, datetime]] = field(default_factory=dict)  # step key: (method, at)


def _seconds(end: datetime, start: datetime) -> float:
    return (end - start).total_seconds()


def _utc_day(moment: datetime):
    return moment.astimezone(UTC).date()


def _enrollment_fact(workspace_id: int, each: _Enrollment, step_keys: list[str], window: timedelta):
    enrollment_id, path_version_id, enrolled_at, status, completed_at, *segment = each.row
    base = (enrollment_id, workspace_id, path_version_id, _utc_day(enrolled_at), *(v or "" for v in segment))
    completed = status == COMPLETED and completed_at is not None
    activated = completed and completed_at <= enrolled_at + window
    return base, (
        *base,
        any(key in each.done for key in step_keys),
        completed,
        _utc_day(completed_at) if completed else None,
        activated,
        bucket_of(_seconds(completed_at, enrolled_at)) if activated else None,
    )


def _step_facts(base: tuple, each: _Enrollment, step_keys: list[str]) -> Iterable[tuple]:
    for index, key in enumerate(step_keys):
        if index == 0:
            entered_at = each.row[2]  # enrolment
        elif step_keys[index - 1] in each.done:
            entered_at = each.done[step_keys[index - 1]][1]
        else:
            continue  # the step before was not advanced past: this one was not entered
        method, done_at = each.done.get(key, (None, None))
        completed = done_at is not None and method != SKIP
        bucket = bucket_of(_seconds(done_at, entered_at)) if completed else None
        yield (*base, key, done_at is not None, completed, bucket)


def _joined_rows(workspace: Workspace, enrollment_ids: list[int]) -> dict[int, _Enrollment]:
    """The enrollments with their segment fields, then their standing completions: two lookups by
    index (joined in one query, PostgreSQL hash-joined a scan of every completion: 0.24 s for
    5,000 enrollments at 100k users, growing with the table)."""
    rows = (
        progress_selectors.enrollments_of_workspace(workspace=workspace)
        .filter(AnyOf(F("pk"), enrollment_ids))
        .order_by()
        .values_list(*_ENROLLMENT_COLUMNS)
    )
    found = {row[0]: _Enrollment(row) for row in rows}
    for enrollment_id, step_key, method, done_at in progress_selectors.completions_standing(
        enrollment_ids=list(found)
    ):
        found[enrollment_id].done[step_key] = (method, done_at)
    return found


def facts_of_enrollments(*, workspace: Workspace, enrollment_ids: list[int], window_days: int) -> Facts:
    """The facts of those of the enrollments that exist (a deleted one has none)."""
    joined = _joined_rows(workspace, enrollment_ids)
    version_ids = {each.row[1] for each in joined.values()}
    steps = paths_selectors.steps_of_versions(workspace=workspace, path_version_ids=version_ids)
    step_keys = {version_id: [step.key for step in found] for version_id, found in steps.items()}
    window = timedelta(days=window_days)
    facts = Facts()
    for each in joined.values():
        keys = step_keys.get(each.row[1], [])
        base, enrollment_fact = _enrollment_fact(workspace.pk, each, keys, window)
        facts.enrollments.append(enrollment_fact)
        facts.steps.extend(_step_facts(base, each, keys))
    return facts


def facts_stored(*, workspace: Workspace, enrollment_ids: list[int]) -> Facts:
    """The stored facts of the enrollments, as rows in the fields' order."""
    steps = _stored(StepFact, (*STEP_FACT_FIELDS, "id"), workspace, enrollment_ids)
    step_key = STEP_FACT_FIELDS.index("step_key")
    return Facts(
        _stored(EnrollmentFact, ENROLLMENT_FACT_FIELDS, workspace, enrollment_ids),
        [row[:-1] for row in steps],
        {(row[0], row[step_key]): row[-1] for row in steps},
    )


def _stored(model, fields: tuple[str, ...], workspace: Workspace, enrollment_ids: list[int]) -> list[tuple]:
    if not enrollment_ids:
        return []
    quote = connection.ops.quote_name
    columns = ", ".join(quote(model._meta.get_field(name).column) for name in fields)
    table = quote(model._meta.db_table)
    if connection.vendor == "postgresql":  # one array parameter, not thousands
        matched, params = "enrollment_id = ANY(%s::bigint[])", [workspace.pk, list(enrollment_ids)]
    else:
        matched = f"enrollment_id IN ({', '.join(['%s'] * len(enrollment_ids))})"
        params = [workspace.pk, *enrollment_ids]
    statement = f"SELECT {columns} FROM {table} WHERE workspace_id = %s AND {matched}"  # noqa: S608
    day = fields.index("day")
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        rows = cursor.fetchall()
    if rows and isinstance(rows[0][day], str):  # a driver that returns the day as text
        rows = [(*row[:day], date.fromisoformat(row[day]), *row[day + 1 :]) for row in rows]
    return rows


def facts_changed(old: Facts, new: Facts) -> tuple[Facts, Facts]:
    """(rows only in old, rows only in new): most of a changed enrollment's facts stay as they were
    (the steps before the one it just completed), and those are neither rewritten nor counted."""
    old_enrollments, new_enrollments = set(old.enrollments), set(new.enrollments)
    old_steps, new_steps = set(old.steps), set(new.steps)
    return (
        Facts(list(old_enrollments - new_enrollments), list(old_steps - new_steps), old.step_ids),
        Facts(list(new_enrollments - old_enrollments), list(new_steps - old_steps)),
    )


def _paired(removed: list[tuple], added: dict, key_of, id_of) -> tuple[list[tuple], list[int]]:
    """((id, *new row) of the removed rows with an added row of the same key, ids of the others);
    the paired rows leave `added`."""
    rewritten, gone = [], []
    for row in removed:
        replacement = added.pop(key_of(row), None)
        if replacement is None:
            gone.append(id_of(row))
        else:
            rewritten.append((id_of(row), *replacement))
    return rewritten, gone


def facts_apply(*, workspace: Workspace, removed: Facts, added: Facts) -> None:
    """Write the difference: a row in both (same enrollment, same step) is updated in place, one
    only removed deleted, one only added inserted. In place, PostgreSQL rewrites no index entry when
    the page has room (fillfactor, migration 0008): after a completion, most of a refresh's rows.
    Rows are found by primary key: a join on (enrollment, step key) was planned as a hash join over
    all the workspace's step facts when the table's statistics were stale (0.27 s a statement)."""
    step_key = STEP_FACT_FIELDS.index("step_key")
    new_enrollments = {row[0]: row for row in added.enrollments}
    new_steps = {(row[0], row[step_key]): row for row in added.steps}
    enrollments = _paired(removed.enrollments, new_enrollments, lambda row: row[0], lambda row: row[0])
    steps = _paired(
        removed.steps,
        new_steps,
        lambda row: (row[0], row[step_key]),
        lambda row: removed.step_ids[(row[0], row[step_key])],
    )
    for model, fields, (rewritten, gone) in (
        (EnrollmentFact, ENROLLMENT_FACT_FIELDS[1:], enrollments),
        (StepFact, STEP_FACT_FIELDS, steps),
    ):
        for start in range(0, len(gone), bulk.ROWS_PER_STATEMENT):
            model.objects.filter(AnyOf(F("pk"), gone[start : start + bulk.ROWS_PER_STATEMENT])).delete()
        # An enrollment fact's id is its enrollment_id, the row's first field: not written twice.
        bulk.update(model, fields, [row[1:] if model is EnrollmentFact else row for row in rewritten])
    facts_write(Facts(list(new_enrollments.values()), list(new_steps.values())))


def facts_write(facts: Facts) -> None:
    bulk.insert(EnrollmentFact, ENROLLMENT_FACT_FIELDS, facts.enrollments)
    bulk.insert(StepFact, STEP_FACT_FIELDS, facts.steps)
