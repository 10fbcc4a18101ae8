"""Bulk writes for the ingestion hot path: one statement per batch, however many rows.

On PostgreSQL the rows travel as one JSON array that `json_populate_recordset` unpacks into the
table's row type: one bound parameter instead of one per value, so neither side adapts or parses
values one by one (about 8x less client CPU than a VALUES list of 1,500 parameters, and less
server CPU). orjson writes datetimes as RFC 3339 and JSON fields as nested JSON, which PostgreSQL
casts to timestamptz and jsonb exactly as bound values would be. On SQLite (>= 3.35, for
RETURNING) the same statements use a VALUES list. Django's bulk_create and bulk_update build a
model instance per row and a CASE per field and object: milliseconds a batch that these avoid.

Only identifiers from models' own metadata are interpolated into SQL; every value is bound.
"""

import json
from collections.abc import Sequence
from datetime import date, datetime, time
from functools import cache
from typing import Any

import orjson
from django.db import connection
from django.db.models import Model

# Both PostgreSQL and SQLite accept 32,766 bound parameters or more in one statement.
ROWS_PER_STATEMENT = 1000


def _quote(name: str) -> str:
    return connection.ops.quote_name(name)


@cache
def _columns(model: type[Model], fields: tuple[str, ...]) -> tuple[tuple[str, ...], tuple]:
    """Column names and, for SQLite, each field's adapter to a query parameter."""
    model_fields = [model._meta.get_field(name) for name in fields]
    columns = tuple(field.column for field in model_fields)
    return columns, tuple(model_fields)


def _postgresql_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    document = [dict(zip(columns, row, strict=True)) for row in rows]
    try:
        return orjson.dumps(document).decode()
    except TypeError:  # an integer beyond 64 bits (a JSON field parsed by the standard library)
        return json.dumps(document, default=_isoformat)


def _isoformat(value: Any) -> str:
    """Datetimes as orjson writes them (RFC 3339, microseconds kept)."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _generic_params(model_fields, rows: Sequence[Sequence[Any]]) -> list[Any]:
    params = []
    for row in rows:
        params.extend(
            field.get_db_prep_save(value, connection) for field, value in zip(model_fields, row, strict=True)
        )
    return params


@cache
def _insert_statements(
    model: type[Model], fields: tuple[str, ...], on_conflict: str, returning: tuple[str, ...], vendor: str
) -> tuple[str, str]:
    """(PostgreSQL statement, SQLite statement with a {values} slot), built once per shape."""
    columns, _ = _columns(model, fields)
    table = _quote(model._meta.db_table)
    column_list = ", ".join(_quote(column) for column in columns)
    tail = (f" ON CONFLICT {on_conflict}" if on_conflict else "") + (
        f" RETURNING {', '.join(_quote(column) for column in returning)}" if returning else ""
    )
    postgresql = (
        f"INSERT INTO {table} ({column_list}) SELECT {column_list} "  # noqa: S608
        f"FROM json_populate_recordset(NULL::{table}, %s){tail}"
    )
    generic = f"INSERT INTO {table} ({column_list}) VALUES {{values}}{tail}"  # noqa: S608
    return postgresql, generic


def insert(
    model: type[Model],
    fields: tuple[str, ...],
    rows: Sequence[Sequence[Any]],
    *,
    on_conflict: str = "",
    returning: tuple[str, ...] = (),
) -> list[tuple]:
    """INSERT rows (values in `fields` order, every column the model needs); return the
    `returning` columns of the rows inserted, in order. `on_conflict` is a literal clause such
    as "(workspace_id, message_id) DO NOTHING"."""
    if not rows:
        return []
    columns, model_fields = _columns(model, fields)
    postgresql, generic = _insert_statements(model, fields, on_conflict, returning, connection.vendor)
    results: list[tuple] = []
    with connection.cursor() as cursor:
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            chunk = rows[start : start + ROWS_PER_STATEMENT]
            if connection.vendor == "postgresql":
                cursor.execute(postgresql, [_postgresql_rows(columns, chunk)])
            else:
                row = "(" + ", ".join(["%s"] * len(columns)) + ")"
                cursor.execute(
                    generic.format(values=", ".join([row] * len(chunk))), _generic_params(model_fields, chunk)
                )
            if returning:
                results.extend(cursor.fetchall())
    return results


@cache
def _update_statements(
    model: type[Model], fields: tuple[str, ...], only_if_null: str, vendor: str
) -> tuple[str, str]:
    """(PostgreSQL statement, SQLite statement for one row), built once per shape."""
    pk = _quote(model._meta.pk.column)
    columns, _ = _columns(model, fields)
    table = _quote(model._meta.db_table)
    condition = ""
    if only_if_null:
        condition = f" AND {table}.{_quote(model._meta.get_field(only_if_null).column)} IS NULL"
    assignments = ", ".join(f"{_quote(column)} = v.{_quote(column)}" for column in columns)
    # The key list (= ANY) lets PostgreSQL look the rows up by index; joined on the unpacked rows
    # alone, it expects a hundred of them and hash-joins a scan of the whole table.
    postgresql = (
        f"UPDATE {table} SET {assignments} "  # noqa: S608
        f"FROM json_populate_recordset(NULL::{table}, %s) v "
        f"WHERE {table}.{pk} = v.{pk} AND {table}.{pk} = ANY(%s){condition} RETURNING {table}.{pk}"
    )
    assignments = ", ".join(f"{_quote(column)} = %s" for column in columns)
    generic = f"UPDATE {table} SET {assignments} WHERE {table}.{pk} = %s{condition} RETURNING {pk}"  # noqa: S608
    return postgresql, generic


def update(
    model: type[Model], fields: tuple[str, ...], rows: Sequence[Sequence[Any]], *, only_if_null: str = ""
) -> list[int]:
    """UPDATE rows by primary key: each row is (pk, *values in `fields` order); return the primary
    keys of the rows updated; with `only_if_null`, only rows where that field is still NULL.
    Writes the values as they are, like bulk_update (no auto_now)."""
    if not rows:
        return []
    columns, model_fields = _columns(model, fields)
    postgresql, generic = _update_statements(model, fields, only_if_null, connection.vendor)
    updated: list[int] = []
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            for start in range(0, len(rows), ROWS_PER_STATEMENT):
                chunk = rows[start : start + ROWS_PER_STATEMENT]
                document = _postgresql_rows((model._meta.pk.column, *columns), chunk)
                cursor.execute(postgresql, [document, [row[0] for row in chunk]])
                updated.extend(row_pk for (row_pk,) in cursor.fetchall())
        else:
            for row in rows:
                cursor.execute(generic, [*_generic_params(model_fields, [row[1:]]), row[0]])
                updated.extend(row_pk for (row_pk,) in cursor.fetchall())
    return updated
