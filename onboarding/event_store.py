"""Bulk, idempotent writes of events: one INSERT ... ON CONFLICT DO NOTHING per chunk.

RETURNING tells which message ids are new, so profile updates and progress evaluation run
only for events stored for the first time. Works on PostgreSQL and SQLite (>= 3.35).
"""

from collections.abc import Sequence

from django.db import connection

from onboarding.models import Event

COLUMNS = (
    "workspace_id",
    "end_user_id",
    "type",
    "name",
    "message_id",
    "user_id",
    "anonymous_id",
    "group_id",
    "previous_id",
    "properties",
    "context",
    "timestamp",
    "original_timestamp",
    "sent_at",
    "received_at",
)
_JSON_COLUMNS = {"properties", "context"}
_DATETIME_COLUMNS = {"timestamp", "original_timestamp", "sent_at", "received_at"}
# Both PostgreSQL and SQLite accept 32,766 bound parameters or more in one statement.
ROWS_PER_STATEMENT = 1000


def _adapters():
    """Per column, how a Python value becomes a query parameter on this database."""
    fields = {field.column: field for field in Event._meta.concrete_fields}
    adapters = []
    for column in COLUMNS:
        field = fields[column]
        if column in _JSON_COLUMNS or (column in _DATETIME_COLUMNS and connection.vendor != "postgresql"):
            adapters.append(lambda value, field=field: field.get_db_prep_save(value, connection))
        else:
            adapters.append(None)
    return adapters


def _insert_statement(row_count: int) -> str:
    """Only identifiers from the model's own metadata are interpolated; values are bound."""
    quote = connection.ops.quote_name
    columns = ", ".join(quote(column) for column in COLUMNS)
    row = "(" + ", ".join(["%s"] * len(COLUMNS)) + ")"
    values = ", ".join([row] * row_count)
    conflict = f"{quote('workspace_id')}, {quote('message_id')}"
    table = quote(Event._meta.db_table)
    return (
        f"INSERT INTO {table} ({columns}) VALUES {values} "  # noqa: S608
        f"ON CONFLICT ({conflict}) DO NOTHING RETURNING {quote('message_id')}"
    )


def insert_events(rows: Sequence[tuple]) -> set[str]:
    """Insert rows (values in COLUMNS order); return the message ids that were new."""
    if not rows:
        return set()
    adapters = _adapters()
    inserted: set[str] = set()
    with connection.cursor() as cursor:
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            chunk = rows[start : start + ROWS_PER_STATEMENT]
            params = []
            for row in chunk:
                params.extend(
                    value if adapt is None else adapt(value)
                    for value, adapt in zip(row, adapters, strict=True)
                )
            cursor.execute(_insert_statement(len(chunk)), params)
            inserted.update(message_id for (message_id,) in cursor.fetchall())
    return inserted
