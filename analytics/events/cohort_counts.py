"""The SQL that keeps the cohort tables: CohortMember (a person's cohort columns), ActivityWeek
(their active weeks, the columns copied) and CohortCount (the matrices, kept by adding
differences). Portable between PostgreSQL and SQLite; no row is loaded into Python but ids of
people whose cohort columns changed.

A difference is a GROUP BY of some CohortMember rows (the sizes, `since` -1) or ActivityWeek rows
(`since` = week - cohort week, from 0) with their count, or its negative, upserted into CohortCount
with `users = users + excluded.users`. A person's columns change as: subtract their rows' counts,
rewrite the rows, add them again; a new week is added once (`counted`).
"""

from django.db import connection
from django.db.models import Exists, OuterRef

from analytics.events import raw
from analytics.models import ActivityWeek, CohortCount, CohortMember
from onboarding.progress import selectors as people_selectors
from tenancy.models import Workspace

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
SEGMENT = "persona, signup_source, company_size, use_case"
ID_BATCH = 500
CANDIDATES_BATCH = 5000  # ids bound in one changed_people statement
MEMBERS = CohortMember._meta.db_table
ACTIVITY = ActivityWeek._meta.db_table
COUNTS = CohortCount._meta.db_table
# (kind, cohort day column, cohort week column) of the two matrices.
KINDS = (
    (CohortCount.Kind.SIGNUP, "signup_day", "signup_week"),
    (CohortCount.Kind.ENROLLMENT, "first_enrolled_day", "first_enrolled_week"),
)


def _compiled(queryset) -> tuple[str, tuple]:
    return queryset.query.sql_with_params()


def _people_sql(workspace: Workspace, among: list | None) -> tuple[str, list]:
    """SELECT of the people's cohort columns, computed from the source (aliases as COHORT_COLUMNS)."""
    people_sql, params = _compiled(people_selectors.cohort_people(workspace=workspace, among=among))
    signup_epoch, enrolled_epoch = raw.epoch_seconds("q.created_at"), raw.epoch_seconds("q.first_enrolled_at")
    return (
        f"SELECT q.id AS end_user_id, {raw.utc_day('q.created_at')} AS signup_day, "  # noqa: S608
        f"{raw.week_number(signup_epoch)} AS signup_week, "
        f"{raw.utc_day('q.first_enrolled_at')} AS first_enrolled_day, "
        f"{raw.week_number(enrolled_epoch)} AS first_enrolled_week, "
        f"q.persona, q.signup_source, q.company_size, q.use_case FROM ({people_sql}) q",
        list(params),
    )


def changed_people(cursor, workspace: Workspace, among: list) -> list[int]:
    """Ids of the people in `among` whose cohort columns differ from their CohortMember row, or
    who have none yet."""
    people_sql, params = _people_sql(workspace, among)
    distinct = "IS DISTINCT FROM" if connection.vendor == "postgresql" else "IS NOT"
    differs = " OR ".join(f"m.{column} {distinct} p.{column}" for column in COHORT_COLUMNS)
    cursor.execute(
        f"SELECT p.end_user_id FROM ({people_sql}) p LEFT JOIN {MEMBERS} m "  # noqa: S608
        f"ON m.end_user_id = p.end_user_id WHERE m.end_user_id IS NULL OR {differs}",
        params,
    )
    return [row[0] for row in cursor.fetchall()]


def first_enrolment_maybe_moved(cursor, enrollments_queryset) -> list[int]:
    """Ids of the people of these enrollments (end_user_id, enrolled_at) whose first enrolment day
    may have moved: no cohort row yet, none enrolled, or an enrollment on another day than their
    first (an earlier one; or the first one, moved). A superset for changed_people: an enrollment
    that only progressed, on its person's first day, is left out, so a refresh after a wave of
    progress does not re-derive everyone's cohort."""
    enrollments_sql, params = _compiled(enrollments_queryset)
    day = raw.utc_day("q.enrolled_at")
    cursor.execute(
        f"SELECT DISTINCT q.end_user_id FROM ({enrollments_sql}) q LEFT JOIN {MEMBERS} m "  # noqa: S608
        "ON m.end_user_id = q.end_user_id WHERE m.end_user_id IS NULL OR m.first_enrolled_day IS NULL "
        f"OR m.first_enrolled_day <> {day}",
        params,
    )
    return [row[0] for row in cursor.fetchall()]


def people_unseen(cursor, events_queryset) -> list[int]:
    """Ids of the people of these events (end_user_id, timestamp) with no cohort row yet."""
    events_sql, params = _compiled(events_queryset)
    cursor.execute(
        f"SELECT DISTINCT q.end_user_id FROM ({events_sql}) q LEFT JOIN {MEMBERS} m "  # noqa: S608
        "ON m.end_user_id = q.end_user_id WHERE m.end_user_id IS NULL",
        params,
    )
    return [row[0] for row in cursor.fetchall()]


def members_write(cursor, workspace: Workspace, among: list | None) -> None:
    """Insert or rewrite the CohortMember rows of the people in `among` (None: everyone)."""
    people_sql, params = _people_sql(workspace, among)
    columns = ", ".join(COHORT_COLUMNS)
    cursor.execute(
        f"INSERT INTO {MEMBERS} (workspace_id, end_user_id, {columns}) "  # noqa: S608
        f"SELECT %s, p.end_user_id, {', '.join(f'p.{column}' for column in COHORT_COLUMNS)} "
        f"FROM ({people_sql}) p WHERE 1 = 1 ON CONFLICT (end_user_id) DO UPDATE SET "
        + ", ".join(f"{column} = excluded.{column}" for column in COHORT_COLUMNS),
        [workspace.pk, *params],
    )


def activity_columns_copy(cursor, end_user_ids: list[int]) -> None:
    """Copy these people's CohortMember columns onto their ActivityWeek rows."""
    columns = ", ".join(COHORT_COLUMNS)
    for batch in batches(end_user_ids):
        cursor.execute(
            f"UPDATE {ACTIVITY} SET ({columns}) = (SELECT {columns} FROM {MEMBERS} m "  # noqa: S608
            f"WHERE m.end_user_id = {ACTIVITY}.end_user_id) WHERE end_user_id IN ({_marks(batch)})",
            batch,
        )


def weeks_insert(cursor, events_queryset, *, counted: bool = False) -> int:
    """Insert the (person, week) of each event with the person's cohort columns, uncounted unless
    the caller counts them itself (a rebuild); a week already stored is left alone."""
    events_sql, params = _compiled(events_queryset)
    week = raw.week_number(raw.epoch_seconds('q."timestamp"'))
    columns = ", ".join(COHORT_COLUMNS)
    cursor.execute(
        f"INSERT INTO {ACTIVITY} (workspace_id, end_user_id, week, counted, {columns}) "  # noqa: S608
        f"SELECT DISTINCT m.workspace_id, m.end_user_id, {week}, %s, "
        + ", ".join(f"m.{column}" for column in COHORT_COLUMNS)
        + f" FROM ({events_sql}) q JOIN {MEMBERS} m ON m.end_user_id = q.end_user_id WHERE 1 = 1 "
        "ON CONFLICT (end_user_id, week) DO NOTHING",
        [counted, *params],
    )
    return max(cursor.rowcount, 0)


def _counts_add(cursor, workspace: Workspace, *, sizes: bool, where: str, params: list, sign: int) -> None:
    """Add `sign` x the counts of the rows of CohortMember (sizes) or ActivityWeek matching `where`."""
    table = MEMBERS if sizes else ACTIVITY
    selects, all_params = [], []
    for kind, day, week in KINDS:
        since = str(CohortCount.SIZE) if sizes else f"week - {week}"
        in_matrix = "" if sizes else f" AND week >= {week}"
        grouped = "" if sizes else f"{since}, "  # a constant is no GROUP BY term (it reads as a position)
        selects.append(
            f"SELECT '{kind}' AS kind, {day} AS cohort_day, {week} AS cohort_week, {since} AS since, "  # noqa: S608
            f"{SEGMENT}, {sign} * COUNT(*) AS users FROM {table} WHERE workspace_id = %s "
            f"AND {day} IS NOT NULL{in_matrix} AND ({where}) GROUP BY {day}, {week}, {grouped}{SEGMENT}"
        )
        all_params += [workspace.pk, *params]
    cursor.execute(
        f"INSERT INTO {COUNTS} (workspace_id, kind, cohort_day, cohort_week, since, {SEGMENT}, users) "  # noqa: S608
        "SELECT %s, d.kind, d.cohort_day, d.cohort_week, d.since, "
        "d.persona, d.signup_source, d.company_size, d.use_case, d.users "
        f"FROM ({' UNION ALL '.join(selects)}) d WHERE 1 = 1 "
        f"ON CONFLICT (workspace_id, kind, cohort_day, since, {SEGMENT}) "
        f"DO UPDATE SET users = {COUNTS}.users + excluded.users",
        [workspace.pk, *all_params],
    )


def people_counts_add(cursor, workspace: Workspace, end_user_ids: list[int], sign: int) -> None:
    """Add (sign 1) or subtract (-1) these people's sizes and counted weeks."""
    for batch in batches(end_user_ids):
        where = f"end_user_id IN ({_marks(batch)})"
        _counts_add(cursor, workspace, sizes=True, where=where, params=batch, sign=sign)
        _counts_add(cursor, workspace, sizes=False, where=f"counted AND {where}", params=batch, sign=sign)


def everyones_sizes_add(cursor, workspace: Workspace) -> None:
    _counts_add(cursor, workspace, sizes=True, where="1 = 1", params=[], sign=1)


def everyones_weeks_add(cursor, workspace: Workspace) -> None:
    _counts_add(cursor, workspace, sizes=False, where="1 = 1", params=[], sign=1)


def new_weeks_count(cursor, workspace: Workspace) -> None:
    """Add the uncounted weeks to the matrices and mark them counted."""
    _counts_add(cursor, workspace, sizes=False, where="NOT counted", params=[], sign=1)
    marked = f"UPDATE {ACTIVITY} SET counted = %s WHERE workspace_id = %s AND NOT counted"  # noqa: S608
    cursor.execute(marked, [True, workspace.pk])


def gone_people(workspace: Workspace) -> list[int]:
    """Ids of CohortMember rows whose profile no longer exists (merged into another)."""
    existing = people_selectors.end_users_of(workspace=workspace).filter(pk=OuterRef("end_user_id"))
    members = CohortMember.objects.filter(workspace=workspace).filter(~Exists(existing))
    return list(members.values_list("end_user_id", flat=True))


def people_forget(cursor, end_user_ids: list[int]) -> None:
    for batch in batches(end_user_ids):
        for table in (ACTIVITY, MEMBERS):
            cursor.execute(f"DELETE FROM {table} WHERE end_user_id IN ({_marks(batch)})", batch)  # noqa: S608


def batches(ids: list[int], size: int = ID_BATCH) -> list[list[int]]:
    return [ids[start : start + size] for start in range(0, len(ids), size)]


def _marks(batch: list) -> str:
    return ", ".join(["%s"] * len(batch))
