"""Keeping the event rollups up to date: CohortMember and ActivityWeek (cohort retention without
scanning events) and EventDayRollup (events per UTC day and name).

The refresh reads a workspace's events by `received_at`, in windows [cursor, bound) of at most
one day; each window is written in one transaction with the cursor moved to its end, so every
event is counted once in EventDayRollup and an interrupted refresh resumes at the last window.
Within a window, in order: the cohort rows of the people it touched (new events, a saved profile:
traits, a merge into them, a new profile; a saved enrollment: a first enrolment) are upserted from
the source; the weeks of the window's events are inserted (ON CONFLICT DO NOTHING: an event in a
week already seen adds nothing); the saved people's activity rows take their new cohort columns,
and their events are read again (a merge moves another profile's events to them, with old
received_at). A profile merged away is deleted, and its rows with it (foreign key cascade).

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
from datetime import datetime, timedelta

from django.db import connection, transaction
from django.utils import timezone

from analytics.events import raw
from analytics.models import ActivityWeek, CohortMember, EventDayRollup, EventRollupCursor
from onboarding.ingestion import selectors as event_selectors
from onboarding.progress import selectors as people_selectors
from tenancy.models import Workspace

LAG = timedelta(minutes=2)
WINDOW = timedelta(days=1)
ID_BATCH = 500
COHORT_COLUMNS = (
    "signup_day",
    "signup_week",
    "first_enrolled_day",
    "first_enrolled_week",
    "persona",
    "signup_source",
    "company_size",
    "use_case",
)
_MEMBERS = CohortMember._meta.db_table
_ACTIVITY = ActivityWeek._meta.db_table
_VOLUMES = EventDayRollup._meta.db_table


@dataclass
class EventRollupReport:
    windows: int = 0
    members: int = 0
    activity_weeks: int = 0
    day_names: int = 0  # (day, event name) rows added to


def _compiled(queryset) -> tuple[str, tuple]:
    return queryset.query.sql_with_params()


def window_bound(now: datetime | None = None) -> datetime:
    """Events received before this are committed (see the module's docstring)."""
    bound = now or timezone.now()
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT min(xact_start) FROM pg_stat_activity WHERE datname = current_database() "
                "AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
            )
            oldest_writer = cursor.fetchone()[0]
        if oldest_writer is not None:
            bound = min(bound, oldest_writer)
    return bound - LAG


def _members_upsert(cursor, workspace: Workspace, among: list | None) -> list[int]:
    """Insert or update the cohort rows of the people in `among` (None: everyone); returns the
    ids of the rows inserted or changed (not those of `among: None`, a rebuild's million)."""
    people_sql, params = _compiled(people_selectors.cohort_people(workspace=workspace, among=among))
    signup_epoch, enrolled_epoch = raw.epoch_seconds("q.created_at"), raw.epoch_seconds("q.first_enrolled_at")
    columns = ", ".join(COHORT_COLUMNS)
    distinct = "IS DISTINCT FROM" if connection.vendor == "postgresql" else "IS NOT"
    cursor.execute(
        f"INSERT INTO {_MEMBERS} (workspace_id, end_user_id, {columns}) "  # noqa: S608
        f"SELECT %s, q.id, {raw.utc_day('q.created_at')}, {raw.week_number(signup_epoch)}, "
        f"{raw.utc_day('q.first_enrolled_at')}, {raw.week_number(enrolled_epoch)}, "
        f"q.persona, q.signup_source, q.company_size, q.use_case FROM ({people_sql}) q WHERE 1 = 1 "
        "ON CONFLICT (end_user_id) DO UPDATE SET "
        + ", ".join(f"{column} = excluded.{column}" for column in COHORT_COLUMNS)
        + f" WHERE ({', '.join(f'{_MEMBERS}.{column}' for column in COHORT_COLUMNS)}) {distinct} "
        f"({', '.join(f'excluded.{column}' for column in COHORT_COLUMNS)})"
        + ("" if among is None else " RETURNING end_user_id"),
        [workspace.pk, *params],
    )
    return [] if among is None else [row[0] for row in cursor.fetchall()]


def _weeks_insert(cursor, events_queryset) -> int:
    """Insert the (person, week) of each event, with the person's cohort columns; a week already
    stored is left alone."""
    events_sql, params = _compiled(events_queryset)
    week = raw.week_number(raw.epoch_seconds('q."timestamp"'))
    columns = ", ".join(COHORT_COLUMNS)
    cursor.execute(
        f"INSERT INTO {_ACTIVITY} (workspace_id, end_user_id, week, {columns}) "  # noqa: S608
        f"SELECT DISTINCT m.workspace_id, m.end_user_id, {week}, "
        + ", ".join(f"m.{column}" for column in COHORT_COLUMNS)
        + f" FROM ({events_sql}) q JOIN {_MEMBERS} m ON m.end_user_id = q.end_user_id WHERE 1 = 1 "
        "ON CONFLICT (end_user_id, week) DO NOTHING",
        list(params),
    )
    return max(cursor.rowcount, 0)


def _activity_columns_update(cursor, end_user_ids: list[int]) -> None:
    """Copy these people's current cohort columns onto their activity rows."""
    columns = ", ".join(COHORT_COLUMNS)
    for start in range(0, len(end_user_ids), ID_BATCH):
        batch = end_user_ids[start : start + ID_BATCH]
        cursor.execute(
            f"UPDATE {_ACTIVITY} SET ({columns}) = (SELECT {columns} FROM {_MEMBERS} m "  # noqa: S608
            f"WHERE m.end_user_id = {_ACTIVITY}.end_user_id) "
            f"WHERE end_user_id IN ({', '.join(['%s'] * len(batch))})",
            batch,
        )


def _volumes_add(cursor, workspace: Workspace, start: datetime, end: datetime) -> int:
    counts_sql, params = _compiled(
        event_selectors.event_counts_by_day_and_name(workspace=workspace, start=start, end=end)
    )
    cursor.execute(
        f"INSERT INTO {_VOLUMES} (workspace_id, day, event_name, events) "  # noqa: S608
        f"SELECT %s, q.day, q.event_name, q.events FROM ({counts_sql}) q WHERE 1 = 1 "
        "ON CONFLICT (workspace_id, day, event_name) "
        f"DO UPDATE SET events = {_VOLUMES}.events + excluded.events",
        [workspace.pk, *params],
    )
    return max(cursor.rowcount, 0)


def _window_apply(
    workspace: Workspace, start: datetime, end: datetime, *, people_changed: bool
) -> EventRollupReport:
    """One window, in one transaction with the cursor moved to `end`. A rebuild's windows leave
    people alone (`people_changed` False): it has just written everyone's cohort row."""
    report = EventRollupReport(windows=1)
    window_events = event_selectors.events_received_between(workspace=workspace, start=start, end=end)
    with transaction.atomic(), connection.cursor() as cursor:
        if people_changed:
            saved = people_selectors.people_changed_between(workspace=workspace, start=start, end=end)
            enrolled = people_selectors.people_with_enrollments_changed_between(
                workspace=workspace, start=start, end=end
            )
            changed = _members_upsert(
                cursor, workspace, [window_events.values("end_user_id"), saved, enrolled]
            )
            report.members = len(changed)
        report.activity_weeks = _weeks_insert(cursor, window_events)
        if people_changed:
            _activity_columns_update(cursor, changed)
            report.activity_weeks += _weeks_insert(
                cursor, event_selectors.events_of_end_users(workspace=workspace, end_user_ids=saved)
            )
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


def _run(
    workspace: Workspace,
    windows: list[tuple[datetime, datetime]],
    *,
    people_changed: bool,
    on_progress: Callable[[int, int], None] | None,
) -> EventRollupReport:
    total = EventRollupReport()
    for done, (start, end) in enumerate(windows, start=1):
        report = _window_apply(workspace, start, end, people_changed=people_changed)
        total.windows += 1
        total.members += report.members
        total.activity_weeks += report.activity_weeks
        total.day_names += report.day_names
        if on_progress is not None:
            on_progress(done, len(windows))
    return total


def event_rollups_rebuild(
    *,
    workspace: Workspace,
    on_progress: Callable[[int, int], None] | None = None,
    now: datetime | None = None,
) -> EventRollupReport:
    """Drop the workspace's event rollups and build them again from every event and person,
    one window (a day of received_at) per transaction; resumable by the incremental refresh.
    `now` (tests) stands for the clock when the bound is taken."""
    bound = window_bound(now)
    with transaction.atomic(), connection.cursor() as cursor:
        for model in (ActivityWeek, CohortMember, EventDayRollup):
            model.objects.filter(workspace=workspace).delete()
        _members_upsert(cursor, workspace, None)
        members = cursor.rowcount
        first = event_selectors.first_event_received_at(workspace=workspace)
        start = min(first, bound) if first is not None else bound
        EventRollupCursor.objects.update_or_create(
            workspace=workspace, defaults={"seen_until": start, "refreshed_at": timezone.now()}
        )
    report = _run(workspace, _windows(start, bound), people_changed=False, on_progress=on_progress)
    report.members += members
    return report


def event_rollups_refresh(*, workspace: Workspace, now: datetime | None = None) -> EventRollupReport:
    """The windows since the workspace's cursor; without a cursor, a rebuild."""
    seen_until = (
        EventRollupCursor.objects.filter(workspace=workspace).values_list("seen_until", flat=True).first()
    )
    if seen_until is None:
        return event_rollups_rebuild(workspace=workspace, now=now)
    return _run(workspace, _windows(seen_until, window_bound(now)), people_changed=True, on_progress=None)
