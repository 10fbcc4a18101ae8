"""Rewrite times stored before onboarding.ingestion.event_times' checks existed, so every row reads again.

An event sent with `9999-12-31T23:59:59-14:00` was stored by PostgreSQL as year 10000 in UTC
(`0001-01-01T00:00:00+14:00` as 1 BC), and psycopg cannot turn either into a Python datetime: any
query that reads the row fails, so the person's export, erasure and progress, the events admin
and `rebuild_progress` failed with it. The rows are found and rewritten in SQL alone (comparisons
in the database, never a read into Python), with a time the server itself recorded:

- an event's `timestamp` becomes its `received_at` (what Segment uses when a client gives no
  time); `original_timestamp` and `sent_at`, the client's own values, become null (unknown);
- progress derived from such an event (an enrollment's times, a step completion's, an answer
  snapshot's) takes the row's own server-side time (`updated_at`, `recorded_at`); then
  `manage.py rebuild_progress` re-derives it from the repaired events.

Used by the data migration onboarding 0010 and by `manage.py repair_event_times`. It takes an
app registry so the migration can pass its historical one.
"""

from dataclasses import dataclass

from django.db import connection, transaction

from onboarding.ingestion import event_times


@dataclass(frozen=True)
class Repair:
    model: str
    column: str
    replacement: str | None
    """Another column of the same row, or None for null."""


REPAIRS = (
    Repair("Event", "timestamp", "received_at"),
    Repair("Event", "original_timestamp", None),
    Repair("Event", "sent_at", None),
    Repair("Enrollment", "enrolled_at", "updated_at"),
    Repair("Enrollment", "step_entered_at", "updated_at"),
    Repair("Enrollment", "completed_at", "updated_at"),
    Repair("Enrollment", "stuck_at", "updated_at"),
    Repair("StepCompletion", "completed_at", "recorded_at"),
    Repair("AnswerSnapshot", "completed_at", "recorded_at"),
)


def _statement(apps, repair: Repair, verb: str) -> tuple[str, list]:
    model = apps.get_model("onboarding", repair.model)
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    column = quote(model._meta.get_field(repair.column).column)
    bounds = [
        connection.ops.adapt_datetimefield_value(moment)
        for moment in (event_times.EARLIEST, event_times.LATEST)
    ]
    where = f"{column} < %s OR {column} >= %s"
    if verb == "count":
        return f"SELECT COUNT(*) FROM {table} WHERE {where}", bounds  # noqa: S608 (names from model metadata)
    replacement = quote(model._meta.get_field(repair.replacement).column) if repair.replacement else "NULL"
    return f"UPDATE {table} SET {column} = {replacement} WHERE {where}", bounds  # noqa: S608


def out_of_range_counts(*, apps) -> dict[str, int]:
    """ "Model.column" -> how many rows hold a time outside the window; only those above zero."""
    counts = {}
    with connection.cursor() as cursor:
        for repair in REPAIRS:
            cursor.execute(*_statement(apps, repair, "count"))
            (count,) = cursor.fetchone()
            if count:
                counts[f"{repair.model}.{repair.column}"] = count
    return counts


def repair_out_of_range_times(*, apps) -> dict[str, int]:
    """Rewrite every out-of-range time, in one transaction; "Model.column" -> rows rewritten."""
    rewritten = {}
    with transaction.atomic(), connection.cursor() as cursor:
        for repair in REPAIRS:
            cursor.execute(*_statement(apps, repair, "update"))
            if cursor.rowcount:
                rewritten[f"{repair.model}.{repair.column}"] = cursor.rowcount
    return rewritten
