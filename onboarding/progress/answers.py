"""Answer aggregation: a snapshot per completed enrollment and per-answer totals per path version.

`answers_snapshot_record` is called by `enrollment_complete` (after the completion is saved) and
by the backfill. It is idempotent: a re-completion subtracts what the enrollment's previous
snapshot added and adds the new answers, in one transaction, as one signed upsert.

Counted: the questions a step defines, except free text (each text would be its own row, and
could hold personal data); text stays in the snapshot and the export. Multi-choice answers count
once per distinct choice; numbers and booleans count as their JSON text ("3", "2.5", "true").
"""

import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from onboarding.models import AnswerSnapshot, AnswerTotal, Enrollment
from paths.models import Step
from tenancy.models import Workspace

SCHEMA_VERSION = 1
"""Stamped on every snapshot and exported line; bump it when the snapshot's shape changes."""

UNCOUNTED_TYPES = {"text"}
UPSERT_ROWS = 300

QuestionTypes = dict[str, dict[str, str]]  # {step key: {question key: type}}
TotalKey = tuple[int, str, str, str]  # (path version id, step key, question key, answer)


def answer_texts(value: Any, question_type: str) -> list[str]:
    """The answers one value counts as; nothing for an unanswered question."""
    if value is None or value == "" or value == []:
        return []
    if question_type == "multi_choice" and isinstance(value, list):
        texts = [text for item in value for text in answer_texts(item, "choice")]
        return list(dict.fromkeys(texts))
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    return [text[: AnswerTotal._meta.get_field("answer").max_length]]


def contribution(*, answers: dict, question_types: QuestionTypes) -> list[list[str]]:
    """The (step, question, answer) rows these answers add to the totals, sorted."""
    rows = set()
    for step_key, questions in question_types.items():
        given = answers.get(step_key)
        if not isinstance(given, dict):
            continue
        for question_key, question_type in questions.items():
            if question_type in UNCOUNTED_TYPES or question_key not in given:
                continue
            for text in answer_texts(given[question_key], question_type):
                rows.add((step_key, question_key, text))
    return [list(row) for row in sorted(rows)]


def question_types(*, path_version_id: int) -> QuestionTypes:
    types: QuestionTypes = {}
    for step_key, questions in Step.objects.filter(path_version_id=path_version_id).values_list(
        "key", "questions"
    ):
        types[step_key] = {
            question["key"]: question.get("type", "text")
            for question in questions or []
            if isinstance(question, dict) and question.get("key")
        }
    return types


def _apply(*, workspace_id: int, delta: Counter) -> None:
    """Add signed counts with one upsert per batch, in key order (so concurrent completions lock
    rows in the same order), then drop rows that reached 0."""
    changes = sorted((key, amount) for key, amount in delta.items() if amount)
    if not changes:
        return
    quote = connection.ops.quote_name
    table = quote(AnswerTotal._meta.db_table)
    columns = ["workspace_id", "path_version_id", "step_key", "question_key", "answer", "count"]
    conflict = ", ".join(
        quote(column) for column in ["path_version_id", "step_key", "question_key", "answer"]
    )
    with connection.cursor() as cursor:
        for start in range(0, len(changes), UPSERT_ROWS):
            batch = changes[start : start + UPSERT_ROWS]
            values = ", ".join(["(%s, %s, %s, %s, %s, %s)"] * len(batch))
            params = [
                item
                for (path_version_id, step_key, question_key, answer), amount in batch
                for item in (workspace_id, path_version_id, step_key, question_key, answer, amount)
            ]
            cursor.execute(
                f"INSERT INTO {table} ({', '.join(quote(column) for column in columns)}) "  # noqa: S608
                f"VALUES {values} ON CONFLICT ({conflict}) "
                f"DO UPDATE SET {quote('count')} = {table}.{quote('count')} + EXCLUDED.{quote('count')}",
                params,
            )
    if any(amount < 0 for _, amount in changes):
        AnswerTotal.objects.filter(path_version_id__in={key[0] for key, _ in changes}, count__lte=0).delete()


def _keys(path_version_id: int, rows: list[list[str]]) -> Counter:
    return Counter((path_version_id, *row) for row in rows)


def _record(*, enrollment: Enrollment, types: QuestionTypes) -> AnswerSnapshot:
    # Lock the enrollment so two recordings of it run one after the other: the second then
    # sees the first's snapshot and replaces its contribution instead of adding to it.
    list(Enrollment.objects.select_for_update().filter(pk=enrollment.pk).values_list("pk"))
    previous = AnswerSnapshot.objects.filter(enrollment_id=enrollment.pk).first()
    rows = contribution(answers=enrollment.answers or {}, question_types=types)
    delta = _keys(enrollment.path_version_id, rows)
    if previous is not None:
        delta.subtract(_keys(previous.path_version_id, previous.contribution))
    _apply(workspace_id=enrollment.workspace_id, delta=delta)
    snapshot, _ = AnswerSnapshot.objects.update_or_create(
        enrollment_id=enrollment.pk,
        defaults={
            "workspace_id": enrollment.workspace_id,
            "path_version_id": enrollment.path_version_id,
            "answers": enrollment.answers or {},
            "contribution": rows,
            "completed_at": enrollment.completed_at or timezone.now(),
            "schema_version": SCHEMA_VERSION,
        },
    )
    return snapshot


@transaction.atomic
def answers_snapshot_record(*, enrollment: Enrollment) -> AnswerSnapshot:
    """Snapshot a completed enrollment's answers and count them; a second call replaces the first."""
    return _record(enrollment=enrollment, types=question_types(path_version_id=enrollment.path_version_id))


@transaction.atomic
def answers_snapshot_remove(*, enrollment: Enrollment) -> bool:
    """Take an enrollment's answers out of the totals (it was reopened or is being erased)."""
    list(Enrollment.objects.select_for_update().filter(pk=enrollment.pk).values_list("pk"))
    previous = AnswerSnapshot.objects.filter(enrollment_id=enrollment.pk).first()
    if previous is None:
        return False
    delta = Counter()
    delta.subtract(_keys(previous.path_version_id, previous.contribution))
    _apply(workspace_id=previous.workspace_id, delta=delta)
    previous.delete()
    return True


@dataclass
class BackfillReport:
    recorded: int = 0
    removed: int = 0


def answers_backfill(
    *,
    workspace: Workspace | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> BackfillReport:
    """Replay every completed enrollment through the recording, and take out snapshots of
    enrollments no longer completed. One transaction per enrollment; safe to run again."""
    report = BackfillReport()
    enrollments = Enrollment.objects.filter(status=Enrollment.Status.COMPLETED)
    stale = AnswerSnapshot.objects.exclude(enrollment__status=Enrollment.Status.COMPLETED)
    if workspace is not None:
        enrollments = enrollments.filter(workspace=workspace)
        stale = stale.filter(workspace=workspace)
    total = enrollments.count()
    types_by_version: dict[int, QuestionTypes] = {}
    rows = enrollments.order_by("pk").only(
        "pk", "workspace_id", "path_version_id", "answers", "completed_at", "status"
    )
    for enrollment in rows.iterator(chunk_size=500):
        if enrollment.path_version_id not in types_by_version:
            types_by_version[enrollment.path_version_id] = question_types(
                path_version_id=enrollment.path_version_id
            )
        with transaction.atomic():
            _record(enrollment=enrollment, types=types_by_version[enrollment.path_version_id])
        report.recorded += 1
        if on_progress and (report.recorded % 100 == 0 or report.recorded == total):
            on_progress(report.recorded, total)
    for snapshot in stale.select_related("enrollment").iterator(chunk_size=500):
        report.removed += answers_snapshot_remove(enrollment=snapshot.enrollment)
    return report


def answer_snapshots_for_export(*, workspace: Workspace | None) -> QuerySet:
    """Snapshots as plain rows for the NDJSON export, oldest first; every workspace when None."""
    snapshots = AnswerSnapshot.objects.all()
    if workspace is not None:
        snapshots = snapshots.filter(workspace=workspace)
    return snapshots.order_by("pk").values(
        "enrollment_id",
        "completed_at",
        "schema_version",
        "answers",
        user_id=F("enrollment__end_user__external_id"),
        workspace_slug=F("workspace__slug"),
        path_key=F("path_version__path__key"),
        path_version_number=F("path_version__number"),
    )


def export_line(row: dict) -> dict:
    """One NDJSON object per snapshot, in the published shape (stamped with its schema version)."""
    return {
        "schema_version": row["schema_version"],
        "workspace": row["workspace_slug"],
        "enrollment_id": row["enrollment_id"],
        "user_id": row["user_id"] or None,
        "path": row["path_key"],
        "path_version": row["path_version_number"],
        "completed_at": row["completed_at"].isoformat(),
        "answers": row["answers"],
    }
