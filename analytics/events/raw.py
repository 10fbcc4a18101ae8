"""Running a raw analytics aggregate: a statement timeout, a cache of every fresh result, and the
last cached result (marked stale, with its age) when the database gives up (seed 000: "If query
times out → return cached results").

Also the two SQL expressions that differ between PostgreSQL and SQLite, so that the queries built
on them run on both (CI runs the suite on each).
"""

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import OperationalError, connection, transaction

from tenancy.models import Workspace

logger = logging.getLogger(__name__)

CACHE_SECONDS = 30 * 24 * 3600
"""How long a result stays available as the stale fallback."""

_POSTGRES_QUERY_CANCELED = "57014"
_SQLITE_CHECK_EVERY = 1000  # virtual machine instructions between two looks at the clock
_WEEK_SECONDS = 7 * 24 * 3600
_FIRST_MONDAY_EPOCH = 4 * 24 * 3600  # 1970-01-05, a Monday: weeks run Monday to Sunday, UTC


class QueryTimedOut(Exception):
    """The database stopped the query at the statement timeout."""


class RawQueryUnavailable(Exception):
    """The query timed out and no earlier result of the same parameters is cached."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def epoch_seconds(column: str) -> str:
    """SQL for a timestamp column as seconds since 1970 (a double)."""
    if connection.vendor == "postgresql":
        return f"CAST(EXTRACT(EPOCH FROM {column}) AS double precision)"
    # julianday's double carries ~10 µs of error at today's dates: rounded to the millisecond, a
    # step exactly one window after the first compares equal to the window's end.
    return f"ROUND((julianday({column}) - 2440587.5) * 86400.0, 3)"


def utc_day(column: str) -> str:
    """SQL for the UTC date of a timestamp column (stored in UTC on both databases)."""
    if connection.vendor == "postgresql":
        return f"CAST(({column} AT TIME ZONE 'UTC') AS date)"
    return f"date({column})"


def week_number(epoch: str) -> str:
    """SQL for the number of the Monday-to-Sunday UTC week holding `epoch` (seconds since 1970)."""
    weeks = f"(({epoch}) - {_FIRST_MONDAY_EPOCH}) / {_WEEK_SECONDS}.0"
    if connection.vendor == "postgresql":
        return f"CAST(FLOOR({weeks}) AS integer)"
    return f"CAST({weeks} AS INTEGER)"  # truncation is the floor for dates after 1970


def week_number_of(epoch: float) -> int:
    """week_number in Python."""
    return int((epoch - _FIRST_MONDAY_EPOCH) // _WEEK_SECONDS)


def week_start(number: int) -> str:
    """The ISO date of the Monday that starts week `number` (see week_number)."""
    return datetime.fromtimestamp(_FIRST_MONDAY_EPOCH + number * _WEEK_SECONDS, tz=UTC).date().isoformat()


def cache_key(*, workspace: Workspace, kind: str, parameters: dict[str, Any]) -> str:
    normalised = json.dumps(parameters, sort_keys=True, separators=(",", ":"), default=str)
    digest = hashlib.sha256(normalised.encode()).hexdigest()[:32]
    return f"analytics:events:{kind}:{workspace.pk}:{digest}"


def _timeout_ms() -> int:
    return int(getattr(settings, "ANALYTICS_RAW_QUERY_TIMEOUT_MS", 10000))


def _is_timeout(error: OperationalError) -> bool:
    cause = error.__cause__
    if getattr(cause, "sqlstate", None) == _POSTGRES_QUERY_CANCELED:
        return True
    return connection.vendor == "sqlite" and "interrupted" in str(error)


@contextmanager
def _statement_timeout(milliseconds: int) -> Iterator[None]:
    """PostgreSQL: SET LOCAL statement_timeout inside the caller's transaction, put back after (a
    savepoint released into an outer transaction would otherwise keep it). SQLite: a progress
    handler that interrupts the statement once the time is up."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('statement_timeout')")
            previous = cursor.fetchone()[0]
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [f"{milliseconds}ms"])
        yield
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('statement_timeout', %s, true)", [previous])
        return
    deadline = time.monotonic() + milliseconds / 1000
    connection.ensure_connection()
    raw_connection = connection.connection
    raw_connection.set_progress_handler(lambda: int(time.monotonic() > deadline), _SQLITE_CHECK_EVERY)
    try:
        yield
    finally:
        raw_connection.set_progress_handler(None, _SQLITE_CHECK_EVERY)


def execute_with_timeout(compute: Callable[[Any], dict]) -> dict:
    """Run `compute(cursor)` in a transaction under the statement timeout; QueryTimedOut if the
    database stopped it."""
    try:
        with transaction.atomic(), _statement_timeout(_timeout_ms()), connection.cursor() as cursor:
            return compute(cursor)
    except OperationalError as error:
        if _is_timeout(error):
            raise QueryTimedOut(str(error)) from error
        raise


def cached_or_fresh(
    *, workspace: Workspace, kind: str, parameters: dict[str, Any], compute: Callable[[Any], dict]
) -> dict:
    """A fresh result (cached for later), or on timeout the last cached one marked stale."""
    key = cache_key(workspace=workspace, kind=kind, parameters=parameters)
    try:
        result = execute_with_timeout(compute)
    except QueryTimedOut:
        logger.warning("analytics.raw_query.timeout", extra={"workspace_id": workspace.pk, "kind": kind})
        entry = cache.get(key)
        if entry is None:
            raise RawQueryUnavailable(
                f"The query took longer than {_timeout_ms()} ms and no earlier result for these "
                "parameters is cached. Narrow the date range or the segment, or retry later."
            ) from None
        age = max(0, round(time.time() - entry["computed_at"]))
        return {**entry["result"], "stale": True, "stale_age_seconds": age}
    now = time.time()
    cache.set(key, {"result": result, "computed_at": now}, timeout=CACHE_SECONDS)
    return {**result, "stale": False, "stale_age_seconds": 0}
