"""When is a write visible? A row stamped at t (updated_at, received_at: the application's clock)
is visible to others once its transaction commits, which can be after a reader looked past t.
Incremental readers (analytics' rollup refreshes) go back to the start of the oldest transaction
still writing, less a margin for the moment between stamping a row and the statement that gives
the transaction its id, so a slow transaction holds them back rather than losing its rows."""

from datetime import datetime

from django.db import connection

OLDEST_WRITER = (
    "SELECT min(xact_start) FROM pg_stat_activity WHERE datname = current_database() "
    "AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()"
)


def oldest_writer_start() -> datetime | None:
    """The start of the oldest other transaction that has written (PostgreSQL); None elsewhere or
    when none is open (SQLite has one writer at a time, and its readers see what has committed)."""
    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        cursor.execute(OLDEST_WRITER)
        return cursor.fetchone()[0]


def committed_before(moment: datetime) -> datetime:
    """`moment`, or the start of the oldest open writing transaction if earlier: rows stamped before
    the result are committed, give or take the caller's margin."""
    oldest = oldest_writer_start()
    return moment if oldest is None else min(moment, oldest)
