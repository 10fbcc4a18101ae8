"""Keeping the rollups up to date: the incremental refresh the scheduler runs every five minutes
and the full rebuild of `manage.py rebuild_rollups`.

Both go through the enrollment facts (facts.py: what each enrollment contributes to the rollups).
The refresh reads which enrollments changed since the workspace's cursor (onboarding's
`enrollments_changed_since`: completions, reverts, skips and status changes all save the
enrollment; trait changes move its segment) and the facts whose enrollment was deleted (an
anti-join), and per chunk of them: their stored facts, their facts computed now, the fact rows
that differ rewritten, and what those count now minus what they counted added to the rollups
(increments.py). The facts of an enrollment that completed one more step mostly stay as they were.
Its cost follows the enrollments changed, not the days or segments they fall in. Each chunk commits
with the cursor moved to the newest change it covered, so an interrupted refresh resumes there;
the cursor never moves past the start of the oldest transaction still writing, less a few
seconds (core.db.visibility), so a change committed late by a slow transaction is still seen, and
re-reading an enrollment adds nothing (its new facts are its old ones). The next chunk's facts are
computed while the current chunk is written (_chunks_read_ahead).

The rebuild rewrites every fact of the workspace, then writes the rollups as GROUP BYs over them
through the diff writer (sync.py): over correct rollups it writes nothing. Every transaction that
writes a workspace's facts or rollups first locks its cursor row, so a refresh and a rebuild (an
activation window change) take turns chunk by chunk instead of overwriting each other's sums.
"""

import logging
from collections import defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db import connection, connections, transaction
from django.db.models import Exists, OuterRef
from django.db.models.functions import Greatest
from django.utils import timezone

from analytics.models import AnalyticsSettings, EnrollmentFact, RollupCursor, StepFact
from analytics.rollups import aggregate, facts, increments, sync
from analytics.rollups.sync import TABLES, Written
from core.db import statistics, visibility
from core.jobs import enqueue
from onboarding.progress import selectors as progress_selectors
from tenancy.models import Workspace

logger = logging.getLogger(__name__)

ENROLLMENTS_PER_CHUNK = 5000
DAYS_PER_SYNC = 200
# The cursor never moves past the start of the oldest transaction still writing, less this margin
# (a row's updated_at is stamped just before its statement): a change stamped before it is
# committed. A fixed 2-minute overlap re-read every change of the last 2 minutes at each refresh
# (75k enrollments, 8 s, after a burst at 1M users).
CURSOR_OVERLAP = timedelta(seconds=10)
# The full rebuild a new activation window queues (by name: jobs sit above the services).
REBUILD_JOB = "analytics.jobs.rebuild_rollups_job"

Slice = tuple[int, date]  # (path version id, enrolment day)


@dataclass
class RefreshReport:
    slices: int = 0  # (path version, day) slices touched
    enrollments: int = 0  # enrollments re-read (changed or deleted)
    chunks: int = 0
    written: Written = field(default_factory=Written)


def activation_window_days(*, workspace: Workspace) -> int:
    found = AnalyticsSettings.objects.filter(workspace=workspace).values_list(
        "activation_window_days", flat=True
    )
    return next(iter(found), AnalyticsSettings.DEFAULT_ACTIVATION_WINDOW_DAYS)


def activation_window_set(*, workspace: Workspace, days: int) -> AnalyticsSettings:
    """Change N. The activated counts were taken with the old N, so a full rebuild is queued once
    this commits, not run here: at a million enrollments it takes minutes, and the dashboards
    keep the previous N's numbers until it ends."""
    with transaction.atomic():
        saved, _ = AnalyticsSettings.objects.update_or_create(
            workspace=workspace, defaults={"activation_window_days": days}
        )
        enqueue(REBUILD_JOB, workspace.pk, queue="low")
    return saved


def _without_jit() -> None:
    """PostgreSQL's JIT spends a second or more compiling GROUP BY queries over many rows, more
    than it saves on them; off for the current transaction only."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")


def _locked_cursor(workspace: Workspace) -> RollupCursor:
    """The workspace's cursor row, locked until the transaction ends (see the module docstring)."""
    _without_jit()
    cursor, _ = RollupCursor.objects.select_for_update().get_or_create(workspace=workspace)
    return cursor


def _changed_enrollments(workspace: Workspace, since: datetime) -> list[tuple[int, datetime | None]]:
    """(enrollment id, last change) to re-read: the facts of deleted enrollments first (no time),
    then the enrollments changed since `since`, oldest change first."""
    enrollments = progress_selectors.enrollments_of_workspace(workspace=workspace)
    vanished = (
        EnrollmentFact.objects.filter(workspace=workspace)
        .filter(~Exists(enrollments.filter(pk=OuterRef("enrollment_id"))))
        .values_list("enrollment_id", flat=True)
    )
    changed = (
        progress_selectors.enrollments_changed_since(workspace=workspace, since=since)
        .annotate(last=Greatest("updated_at", "end_user__updated_at"))
        .order_by("last", "pk")
        .values_list("pk", "last")
    )
    return [(enrollment_id, None) for enrollment_id in vanished] + list(changed)


def _facts_now(workspace: Workspace, enrollment_ids: list[int], window_days: int) -> tuple[int, facts.Facts]:
    return window_days, facts.facts_of_enrollments(
        workspace=workspace, enrollment_ids=enrollment_ids, window_days=window_days
    )


def _chunks_read_ahead(
    workspace: Workspace, chunks: list[list[int]]
) -> Iterator[tuple[list[int], tuple | None]]:
    """Each chunk with its facts computed now, those of the next chunk computed on a second thread
    (its own connection) while the caller writes this one's: on PostgreSQL the refresh's time is
    about half Python (facts) and half database (writes), and the two overlap on two cores. Only
    the enrollments' facts are read ahead: chunks are disjoint, and the stored facts they are
    compared with are read in the chunk's locked transaction. Sequential (None) inside a
    transaction (its rows are not visible to another connection) and on SQLite (one writer)."""
    if connection.vendor != "postgresql" or connection.in_atomic_block or len(chunks) < 2:
        yield from ((chunk, None) for chunk in chunks)
        return
    window_days = activation_window_days(workspace=workspace)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="facts-read-ahead") as reader:
        try:
            pending = reader.submit(_facts_now, workspace, chunks[0], window_days)
            for index, chunk in enumerate(chunks):
                computed = pending.result()
                if index + 1 < len(chunks):
                    pending = reader.submit(_facts_now, workspace, chunks[index + 1], window_days)
                yield chunk, computed
        finally:
            reader.submit(connections.close_all)  # the reader thread's connection


def _refresh_chunk(
    workspace: Workspace, enrollment_ids: list[int], computed: tuple[int, facts.Facts] | None = None
) -> tuple[Written, set[Slice]]:
    """Rewrite the enrollments' fact rows that changed and add what they count now minus what they
    counted to the rollups. `computed`: (window days, facts) read ahead, used if N has not moved."""
    window_days = activation_window_days(workspace=workspace)
    old = facts.facts_stored(workspace=workspace, enrollment_ids=enrollment_ids)
    if computed is not None and computed[0] == window_days:
        new = computed[1]
    else:
        new = facts.facts_of_enrollments(
            workspace=workspace, enrollment_ids=enrollment_ids, window_days=window_days
        )
    removed, added = facts.facts_changed(old, new)
    facts.facts_apply(workspace=workspace, removed=removed, added=added)
    moved = increments.differences_of_facts(added, removed)
    written = increments.increments_apply(workspace=workspace, moved=moved, window_days=window_days)
    touched = {(row[2], row[3]) for each in (added, removed) for row in each.enrollments}
    return written, touched


def _horizon(now: datetime | None = None) -> datetime:
    """Every change stamped before this has committed (see CURSOR_OVERLAP)."""
    return visibility.committed_before(now or timezone.now()) - CURSOR_OVERLAP


def rollups_refresh(*, workspace: Workspace, now: datetime | None = None) -> RefreshReport:
    """Re-read the enrollments changed since the cursor (and deleted ones), a committed chunk at a
    time; the cursor moves to the newest change read, up to the horizon taken before reading.
    `now` (tests) stands for the clock."""
    cursor, _ = RollupCursor.objects.get_or_create(workspace=workspace)
    if cursor.changes_seen_until is None:
        return rollups_rebuild(workspace=workspace)
    horizon = _horizon(now)
    found = _changed_enrollments(workspace, cursor.changes_seen_until)
    report = RefreshReport(enrollments=len(found))
    touched: set[Slice] = set()
    chunks = [
        found[start : start + ENROLLMENTS_PER_CHUNK] for start in range(0, len(found), ENROLLMENTS_PER_CHUNK)
    ]
    ids_of_chunks = [[enrollment_id for enrollment_id, _ in chunk] for chunk in chunks]
    for chunk, (ids, computed) in zip(chunks, _chunks_read_ahead(workspace, ids_of_chunks), strict=True):
        with transaction.atomic():
            locked = _locked_cursor(workspace)
            written, slices = _refresh_chunk(workspace, ids, computed)
            report.written.add(written)
            touched |= slices
            seen = [at for _, at in chunk if at is not None]
            if locked.changes_seen_until is not None and seen:
                newest = max(locked.changes_seen_until, min(seen[-1], horizon))
                RollupCursor.objects.filter(pk=locked.pk).update(changes_seen_until=newest)
        report.chunks += 1
    report.slices = len(touched)
    RollupCursor.objects.filter(pk=cursor.pk).update(refreshed_at=timezone.now())
    logger.info(
        "analytics.rollups.refreshed",
        extra={
            "workspace_id": workspace.pk,
            "enrollments": report.enrollments,
            "changed": report.written.changed,
        },
    )
    return report


def _facts_rewrite(workspace: Workspace, on_progress: Callable[[int, int], None] | None) -> int:
    """Every fact of the workspace computed again, a committed batch of enrollments at a time (by
    id, so the facts of deleted enrollments between them go too); the number of enrollments."""
    enrollments = progress_selectors.enrollments_of_workspace(workspace=workspace)
    total, done, after = enrollments.count(), 0, 0
    if on_progress:
        on_progress(0, total)
    while True:
        ids = list(
            enrollments.filter(pk__gt=after)
            .order_by("pk")
            .values_list("pk", flat=True)[:ENROLLMENTS_PER_CHUNK]
        )
        upto = {"enrollment_id__lte": ids[-1]} if ids else {}
        with transaction.atomic():
            _locked_cursor(workspace)
            window_days = activation_window_days(workspace=workspace)
            for model in (EnrollmentFact, StepFact):
                model.objects.filter(workspace=workspace, enrollment_id__gt=after, **upto).delete()
            facts.facts_write(
                facts.facts_of_enrollments(workspace=workspace, enrollment_ids=ids, window_days=window_days)
            )
        if not ids:
            # With an empty table's statistics, PostgreSQL planned the refresh's lookups by
            # enrollment as scans of the whole workspace.
            statistics.analyze(EnrollmentFact, StepFact)
            return total
        after, done = ids[-1], done + len(ids)
        if on_progress:
            on_progress(min(done, total), total)


def _sync_version_days(workspace: Workspace, path_version_id: int, days: set[date]) -> Written:
    with transaction.atomic():
        _locked_cursor(workspace)
        rows = aggregate.rows_of_facts(
            EnrollmentFact.objects.filter(workspace=workspace, path_version_id=path_version_id, day__in=days),
            StepFact.objects.filter(workspace=workspace, path_version_id=path_version_id, day__in=days),
        ).get(path_version_id, aggregate.VersionRows())
        return sync.sync_version(
            workspace=workspace,
            path_version_id=path_version_id,
            days=days,
            rows=rows,
            window_days=activation_window_days(workspace=workspace),
        )


def rollups_rebuild(
    *, workspace: Workspace, on_progress: Callable[[int, int], None] | None = None
) -> RefreshReport:
    """Rewrite the workspace's facts, then its rollups from them (writing only the rows that
    differ) and drop the rows of slices with no enrollment left; the cursor then starts from the
    horizon taken when the rebuild began. `on_progress(done, total)` counts enrollments."""
    started_at = _horizon()
    report = RefreshReport(enrollments=_facts_rewrite(workspace, on_progress))
    found = set(
        EnrollmentFact.objects.filter(workspace=workspace)
        .order_by()
        .values_list("path_version_id", "day")
        .distinct()
    )
    days_by_version: dict[int, list[date]] = defaultdict(list)
    for path_version_id, day in sorted(found):
        days_by_version[path_version_id].append(day)
    for path_version_id, days in days_by_version.items():
        for start in range(0, len(days), DAYS_PER_SYNC):
            report.written.add(
                _sync_version_days(workspace, path_version_id, set(days[start : start + DAYS_PER_SYNC]))
            )
            report.chunks += 1
    report.slices = len(found)
    with transaction.atomic():
        _locked_cursor(workspace)
        report.written.deleted += _delete_vanished_slices(workspace, found)
        RollupCursor.objects.filter(workspace=workspace).update(
            changes_seen_until=started_at, refreshed_at=timezone.now()
        )
    statistics.analyze(*(table.model for table in TABLES))
    return report


def _delete_vanished_slices(workspace: Workspace, kept: set[Slice]) -> int:
    deleted = 0
    for table in TABLES:
        stored = set(
            table.model.objects.filter(workspace=workspace).values_list("path_version_id", "day").distinct()
        )
        for path_version_id, day in stored - kept:
            count, _ = table.model.objects.filter(
                workspace=workspace, path_version_id=path_version_id, day=day
            ).delete()
            deleted += count
    return deleted


def rollups_enrollments_reread(*, workspace: Workspace, enrollment_ids: list[int]) -> int:
    """Re-read these enrollments now, in the caller's transaction (the GDPR eraser: the erasure
    empties the profile's traits without moving its updated_at, so no refresh would see it); how
    many were re-read. Nothing to do before the first rebuild, which reads every enrollment."""
    with transaction.atomic():
        if _locked_cursor(workspace).changes_seen_until is None:
            return 0
        for start in range(0, len(enrollment_ids), ENROLLMENTS_PER_CHUNK):
            _refresh_chunk(workspace, enrollment_ids[start : start + ENROLLMENTS_PER_CHUNK])
    return len(enrollment_ids)
