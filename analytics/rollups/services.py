"""Keeping the rollups up to date: the incremental refresh the scheduler runs every five minutes
and the full rebuild of `manage.py rebuild_rollups`.

The refresh reads which (path version, enrolment day) slices have changed since the workspace's
cursor (onboarding's `enrollments_changed_since`: completions, reverts, skips and status changes
all save the enrollment; trait changes move its segment), recomputes those slices from the source
in the database and writes the difference (sync.py). Each chunk of slices commits with the cursor
moved to the newest change it covered, so an interrupted refresh resumes there. The cursor is
read back with an overlap, so a change committed late by a slow transaction is still seen;
re-reading a slice writes nothing when nothing changed.

Not seen incrementally: deleted enrollments (erasure); the nightly-or-on-demand rebuild drops them.
"""

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from django.db import connection, transaction
from django.db.models import Max
from django.db.models.functions import Greatest, TruncDate
from django.utils import timezone

from analytics.models import AnalyticsSettings, RollupCursor
from analytics.rollups import compute, sync
from analytics.rollups.sync import TABLES, Written
from onboarding.progress import selectors as progress_selectors
from paths import selectors as paths_selectors
from tenancy.models import Workspace

logger = logging.getLogger(__name__)

SLICES_PER_CHUNK = 200
CURSOR_OVERLAP = timedelta(minutes=2)

Slice = tuple[int, date]  # (path version id, enrolment day)


@dataclass
class RefreshReport:
    slices: int = 0
    chunks: int = 0
    written: Written = field(default_factory=Written)


def activation_window_days(*, workspace: Workspace) -> int:
    found = AnalyticsSettings.objects.filter(workspace=workspace).values_list(
        "activation_window_days", flat=True
    )
    return next(iter(found), AnalyticsSettings.DEFAULT_ACTIVATION_WINDOW_DAYS)


def activation_window_set(*, workspace: Workspace, days: int) -> None:
    """Change N; the activated counts were taken with the old N, so the rollups are rebuilt."""
    AnalyticsSettings.objects.update_or_create(workspace=workspace, defaults={"activation_window_days": days})
    rollups_rebuild(workspace=workspace)


def _slices_with_last_change(queryset) -> list[tuple[Slice, datetime]]:
    rows = (
        queryset.annotate(day=TruncDate("enrolled_at", tzinfo=UTC))
        .values("path_version_id", "day")
        .annotate(last=Max(Greatest("updated_at", "end_user__updated_at")))
        .order_by("last", "path_version_id", "day")
    )
    return [((row["path_version_id"], row["day"]), row["last"]) for row in rows]


def _without_jit() -> None:
    """PostgreSQL's JIT spends a second or more compiling each of these GROUP BY queries, more than
    it saves on them; off for the current transaction only."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")


def _recompute(workspace: Workspace, slices: Iterable[Slice], window_days: int) -> Written:
    _without_jit()
    days_by_version: dict[int, set[date]] = defaultdict(set)
    for path_version_id, day in slices:
        days_by_version[path_version_id].add(day)
    steps = paths_selectors.steps_of_versions(workspace=workspace, path_version_ids=days_by_version)
    written = Written()
    for path_version_id, days in days_by_version.items():
        rows = compute.version_rows(
            workspace, path_version_id, days, steps.get(path_version_id, []), window_days
        )
        written.add(
            sync.sync_version(
                workspace=workspace,
                path_version_id=path_version_id,
                days=days,
                rows=rows,
                window_days=window_days,
            )
        )
    return written


def rollups_refresh(*, workspace: Workspace) -> RefreshReport:
    """Recompute the slices changed since the cursor, one committed chunk at a time."""
    cursor, _ = RollupCursor.objects.get_or_create(workspace=workspace)
    if cursor.changes_seen_until is None:
        return rollups_rebuild(workspace=workspace)
    since = cursor.changes_seen_until - CURSOR_OVERLAP
    changed = progress_selectors.enrollments_changed_since(workspace=workspace, since=since)
    found = _slices_with_last_change(changed)
    window_days = activation_window_days(workspace=workspace)
    report = RefreshReport(slices=len(found))
    for start in range(0, len(found), SLICES_PER_CHUNK):
        chunk = found[start : start + SLICES_PER_CHUNK]
        with transaction.atomic():
            report.written.add(_recompute(workspace, [each for each, _ in chunk], window_days))
            newest = max(cursor.changes_seen_until, chunk[-1][1])
            RollupCursor.objects.filter(pk=cursor.pk).update(changes_seen_until=newest)
            cursor.changes_seen_until = newest
        report.chunks += 1
    RollupCursor.objects.filter(pk=cursor.pk).update(refreshed_at=timezone.now())
    logger.info(
        "analytics.rollups.refreshed",
        extra={"workspace_id": workspace.pk, "slices": report.slices, "changed": report.written.changed},
    )
    return report


def rollups_rebuild(
    *, workspace: Workspace, on_progress: Callable[[int, int], None] | None = None
) -> RefreshReport:
    """Recompute every slice of the workspace and drop the rows of slices with no enrollment left;
    the cursor then starts from the moment the rebuild began."""
    started_at = timezone.now()
    enrollments = progress_selectors.enrollments_of_workspace(workspace=workspace)
    found = [each for each, _ in _slices_with_last_change(enrollments)]
    window_days = activation_window_days(workspace=workspace)
    report = RefreshReport(slices=len(found))
    if on_progress:
        on_progress(0, len(found))
    for start in range(0, len(found), SLICES_PER_CHUNK):
        with transaction.atomic():
            report.written.add(_recompute(workspace, found[start : start + SLICES_PER_CHUNK], window_days))
        report.chunks += 1
        if on_progress:
            on_progress(min(start + SLICES_PER_CHUNK, len(found)), len(found))
    report.written.deleted += _delete_vanished_slices(workspace, set(found))
    RollupCursor.objects.update_or_create(
        workspace=workspace, defaults={"changes_seen_until": started_at, "refreshed_at": timezone.now()}
    )
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
