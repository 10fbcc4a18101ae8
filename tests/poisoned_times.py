"""Rows holding a time no Python process can read, as PostgreSQL stored them from ingestion before
it bounded times (onboarding.ingestion.event_times): `9999-12-31T23:59:59-14:00` is year 10000 in UTC,
`0001-01-01T00:00:00+14:00` is 1 BC. On SQLite the same texts as PostgreSQL would show them."""

from django.db import connection

FUTURE, PAST = "future", "past"
_POSTGRESQL = {FUTURE: "9999-12-31T23:59:59-14:00", PAST: "0001-01-01T00:00:00+14:00"}
_SQLITE = {FUTURE: "10000-01-01 09:59:59", PAST: "0000-12-31 10:00:00"}


def poison(model, pk: int, column: str, when: str = FUTURE) -> None:
    """Write the unreadable time into one row's column, in SQL (the ORM cannot represent it)."""
    table = connection.ops.quote_name(model._meta.db_table)
    name = connection.ops.quote_name(model._meta.get_field(column).column)
    cast = "::timestamptz" if connection.vendor == "postgresql" else ""
    value = (_POSTGRESQL if connection.vendor == "postgresql" else _SQLITE)[when]
    statement = f"UPDATE {table} SET {name} = %s{cast} WHERE id = %s"  # noqa: S608 (names from model metadata)
    with connection.cursor() as cursor:
        cursor.execute(statement, [value, pk])
