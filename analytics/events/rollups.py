"""Keeping the event rollups up to date: the cohort tables (CohortMember, ActivityWeek and the
matrices CohortCount, cohort_counts.py) and EventDayRollup (events per UTC day and name).

The refresh reads a workspace's events by `received_at`, in windows [cursor, bound) of at most
one day; each window is written in one transaction with the cursor moved to its end, so every
event is counted once in EventDayRollup and an interrupted refresh resumes at the last window.
Within a window, in order: of the people whose cohort can have moved (a saved profile: traits, a
merge into them, a new profile; a saved enrollment on another day than their first enrolment, or
of someone never enrolled; an event of someone with no CohortMember row yet), those whose cohort
columns differ from their CohortMember row have their counts subtracted, their rows rewritten and
their counts added again (an enrollment that only progressed moves nothing and is not re-read);
the weeks of the window's events are inserted (ON CONFLICT DO NOTHING: a week already seen adds
nothing), as are all the weeks of the saved profiles (a merge moves another profile's events to
them, with their old received_at), and the new weeks are counted. Before the
windows, the people whose profile is gone (merged into another) are subtracted and forgotten.

Why windows end at `bound` (window_bound): received_at is stamped when the request arrives, before
the storing transaction starts; an event is visible only once that transaction commits. Ingestion
stamps, validates and opens its transaction within well under a second (retries of a deadlock
wait 0.35 s in all, core.db.retry), so an event not committed yet was stamped less than LAG before
the start of its transaction. The bound is LAG before the earlier of now and (PostgreSQL) the start
of the oldest transaction that has written anything, so a long transaction holds the bound back
rather than losing its events. The same holds for the people's updated_at, stamped inside their
transaction.

Not seen incrementally: a deleted enrollment that was someone's first (the rebuild fixes it).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from analytics.events import cohort_counts as counts
from analytics.models import ActivityWeek, CohortCount, CohortMember, EventDayRollup, EventRollupCursor
from core.db import statistics, visibility
from onboarding.ingestion import selectors as event_selectors
from onboarding.progress import selectors as people_selectors
from tenancy.models import Workspace

LAG = timedelta(minutes=2)
WINDOW = timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
REBUILD_STEPS = 4
_VOLUMES = EventDayRollup._meta.db_table


@dataclass
class EventRollupReport:
    windows: int = 0
    people: int = 0  # cohort rows written (changed people; a rebuild: everyone)
    activity_weeks: int = 0
    day_names: int = 0  # (day, event name) rows added to


def window_bound(now: datetime | None = None) -> datetime:
    """Events received before this are committed (see the module's docstring)."""
    return visibility.committed_before(now or timezone.now()) - LAG


def _volumes_add(cursor, workspace: Workspace, start: datetime, end: datetime) -> int:
    counts_sql, params = event_selectors.event_counts_by_day_and_name(
        workspace=workspace, start=start, end=end
    ).query.sql_with_params()
    cursor.execute(
        f"INSERT INTO {_VOLUMES} (workspace_id, day, event_name, events) "  # noqa: S608
        f"SELECT %s, q.day, q.event_name, q.events FROM ({counts_sql}) q WHERE 1 = 1 "
        "ON CONFLICT (workspace_id, day, event_name) "
        f"DO UPDATE SET events = {_VOLUMES}.events + excluded.events",
        [workspace.pk, *params],
    )
    return max(cursor.rowcount, 0)


def _people_apply(cursor, workspace: Workspace, saved, candidates: list[int]) -> int:
    """Rewrite the cohort rows of the people saved (a values query of ids) or among the candidates
    whose columns changed, and their counts."""
    changed = set(counts.changed_people(cursor, workspace, [saved]))
    for batch in counts.batches(sorted(set(candidates)), size=counts.CANDIDATES_BATCH):
        changed.update(counts.changed_people(cursor, workspace, [batch]))
    changed = sorted(changed)
    if changed:
        counts.people_counts_add(cursor, workspace, changed, -1)
        for batch in counts.batches(changed):
            counts.members_write(cursor, workspace, [batch])
        counts.activity_columns_copy(cursor, changed)
        counts.people_counts_add(cursor, workspace, changed, 1)
    return len(changed)


def _window_apply(workspace: Workspace, start: datetime, end: datetime) -> EventRollupReport:
    """One window, in one transaction with the cursor moved to `end`."""
    report = EventRollupReport(windows=1)
    window_events = event_selectors.events_received_between(workspace=workspace, start=start, end=end)
    with transaction.atomic(), connection.cursor() as cursor:
        saved = people_selectors.people_changed_between(workspace=workspace, start=start, end=end)
        enrolled = people_selectors.enrollments_changed_between(workspace=workspace, start=start, end=end)
        candidates = counts.first_enrolment_maybe_moved(cursor, enrolled)
        candidates += counts.people_unseen(cursor, window_events)
        report.people = _people_apply(cursor, workspace, saved, candidates)
        report.activity_weeks = counts.weeks_insert(cursor, window_events)
        report.activity_weeks += counts.weeks_insert(
            cursor, event_selectors.events_of_end_users(workspace=workspace, end_user_ids=saved)
        )
        counts.new_weeks_count(cursor, workspace)
        report.day_names = _volumes_add(cursor, workspace, start, end)
        EventRollupCursor.objects.update_or_create(
            workspace=workspace, defaults={"seen_until": end, "refreshed_at": timezone.now()}
        )
    return report


def _windows(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    windows = []
    while start < end:
        windows.append((start, min(start + WINDOW, end)))
        start += WINDOW
    return windows


def _run(workspace: Workspace, windows: list[tuple[datetime, datetime]]) -> EventRollupReport:
    total = EventRollupReport()
    for start, end in windows:
        report = _window_apply(workspace, start, end)
        total.windows += 1
        total.people += report.people
        total.activity_weeks += report.activity_weeks
        total.day_names += report.day_names
    return total


def event_rollups_rebuild(
    *,
    workspace: Workspace,
    on_progress: Callable[[int, int], None] | None = None,
    now: datetime | None = None,
) -> EventRollupReport:
    """Drop the workspace's event rollups and build them again from every person and every event
    received before the bound, in one transaction of four steps (people, weeks, matrices, day x
    name counts; `on_progress` after each): one pass over the events each for the weeks and the
    counts, which no index bounds. Interrupted, it leaves the rollups as they were, and the cursor:
    the next refresh goes on from it, or rebuilds when there was none. `now` (tests) stands for the
    clock when the bound is taken."""
    bound = window_bound(now)
    every_event = event_selectors.events_received_between(workspace=workspace, start=EPOCH, end=bound)
    report = EventRollupReport(windows=1)
    with transaction.atomic(), connection.cursor() as cursor:
        for model in (ActivityWeek, CohortMember, CohortCount, EventDayRollup):
            model.objects.filter(workspace=workspace).delete()
        counts.members_write(cursor, workspace, None)
        counts.everyones_sizes_add(cursor, workspace)
        _progress(on_progress, 1)
        report.activity_weeks = counts.weeks_insert(cursor, every_event, counted=True)
        _progress(on_progress, 2)
        counts.everyones_weeks_add(cursor, workspace)
        _progress(on_progress, 3)
        report.day_names = _volumes_add(cursor, workspace, EPOCH, bound)
        EventRollupCursor.objects.update_or_create(
            workspace=workspace, defaults={"seen_until": bound, "refreshed_at": timezone.now()}
        )
    statistics.analyze(ActivityWeek, CohortMember, CohortCount, EventDayRollup)
    _progress(on_progress, REBUILD_STEPS)
    report.people = CohortMember.objects.filter(workspace=workspace).count()
    return report


def _progress(on_progress: Callable[[int, int], None] | None, done: int) -> None:
    if on_progress is not None:
        on_progress(done, REBUILD_STEPS)


def _gone_forget(workspace: Workspace) -> None:
    """Subtract and drop the people whose profile was deleted (merged into another)."""
    gone = counts.gone_people(workspace)
    if gone:
        with transaction.atomic(), connection.cursor() as cursor:
            counts.people_counts_add(cursor, workspace, gone, -1)
            counts.people_forget(cursor, gone)


def event_rollups_refresh(*, workspace: Workspace, now: datetime | None = None) -> EventRollupReport:
    """The windows since the workspace's cursor; without a cursor, a rebuild."""
    seen_until = (
        EventRollupCursor.objects.filter(workspace=workspace).values_list("seen_until", flat=True).first()
    )
    if seen_until is None:
        return event_rollups_rebuild(workspace=workspace, now=now)
    _gone_forget(workspace)
    return _run(workspace, _windows(seen_until, window_bound(now)))
