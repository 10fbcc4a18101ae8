"""Applying a difference of rollup rows (what a refresh chunk's changed fact rows count now minus
what they counted before) to the stored rollups as increments: a row's counts move by the difference,
a key not stored yet is inserted, a row whose count fell to zero is deleted. Only the keys the
chunk's enrollments touch are read or written, so a refresh costs what changed.

Per batch of rows: one UPDATE joined on the table's unique key (n = n + difference), RETURNING the
keys it found; one INSERT of the others. Not an INSERT ... ON CONFLICT DO UPDATE: the columns'
CHECK (n >= 0) is tested on the row proposed for insertion, before the conflict is, so a negative
difference could not go through it.

Only identifiers from models' own metadata are interpolated into SQL; every value is bound.
"""

from datetime import date
from functools import cache

import orjson
from django.db import connection

from analytics.models import SEGMENT_FIELDS
from analytics.rollups.facts import ENROLLMENT_FACT_FIELDS, STEP_FACT_FIELDS, Facts
from analytics.rollups.sync import (
    ACTIVATION_BUCKETS,
    ENROLLMENTS,
    STEP_BUCKETS,
    STEPS,
    TABLES,
    RollupTable,
    Written,
)
from core.db import bulk
from tenancy.models import Workspace

ROWS_PER_STATEMENT = 1000
_KEPT_VALUES = ("activation_window_days",)  # set, not added


class RollupsOutOfStep(RuntimeError):
    """A difference would make a stored count negative: the rollups do not hold the facts' sums
    (rows deleted by hand, say); `manage.py rebuild_rollups` rewrites both."""


def _counted(table: RollupTable) -> tuple[str, ...]:
    return tuple(name for name in table.values if name not in _KEPT_VALUES)


_E = {name: index for index, name in enumerate(ENROLLMENT_FACT_FIELDS)}
_S = {name: index for index, name in enumerate(STEP_FACT_FIELDS)}
_VERSION_AND_KEY = slice(_E["path_version"], _E["day"] + 1 + len(SEGMENT_FIELDS))  # in both row kinds


def _add(sums: dict, key: tuple, sign: int, *values: int) -> None:
    found = sums.get(key)
    if found is None:
        found = sums[key] = [0] * len(values)
    for index, value in enumerate(values):
        found[index] += sign * value


def differences_of_facts(added: Facts, removed: Facts) -> dict[RollupTable, list[tuple]]:
    """Per table, rows (path version id, *key, *count differences): what the added fact rows
    count minus what the removed ones counted, by the rules of aggregate.rows_of_facts."""
    sums: dict[RollupTable, dict] = {table: {} for table in TABLES}
    for facts, sign in ((added, 1), (removed, -1)):
        for row in facts.enrollments:
            key = row[_VERSION_AND_KEY]
            flags = (int(bool(row[_E[name]])) for name in ("started", "completed", "activated"))
            _add(sums[ENROLLMENTS], key, sign, 1, *flags)
            if row[_E["activated"]]:
                _add(sums[ACTIVATION_BUCKETS], (*key, row[_E["activation_bucket"]]), sign, 1)
        for row in facts.steps:
            key = (*row[_VERSION_AND_KEY], row[_S["step_key"]])
            _add(sums[STEPS], key, sign, 1, int(bool(row[_S["advanced"]])), int(bool(row[_S["completed"]])))
            if row[_S["bucket"]] is not None:
                _add(sums[STEP_BUCKETS], (*key, row[_S["bucket"]]), sign, 1)
    return {
        table: [(*key, *moved) for key, moved in found.items() if any(moved)] for table, found in sums.items()
    }


def _columns(table: RollupTable) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(key columns with the path version's, value columns) of the table."""
    meta = table.model._meta
    key = ("path_version", *table.key_fields)
    return tuple(meta.get_field(name).column for name in key), tuple(
        meta.get_field(name).column for name in table.values
    )


@cache
def _update_statement(table: RollupTable, vendor: str) -> str:
    quote = connection.ops.quote_name
    name = quote(table.model._meta.db_table)
    key, values = _columns(table)
    assignments = ", ".join(
        f"{quote(column)} = v.{quote(column)}"
        if column in _KEPT_VALUES
        else f"{quote(column)} = {name}.{quote(column)} + v.{quote(column)}"
        for column in values
    )
    matched = " AND ".join(f"{name}.{quote(column)} = v.{quote(column)}" for column in key)
    presence = quote(values[0])  # enrolled, entered or count: zero when the key has nothing left
    if vendor == "postgresql":
        returned = ", ".join(f"{name}.{quote(column)}" for column in ("id", *key)) + f", {name}.{presence}"
        source = f"json_populate_recordset(NULL::{name}, %s) v"
        return f"UPDATE {name} SET {assignments} FROM {source} WHERE {matched} RETURNING {returned}"  # noqa: S608
    column_list = ", ".join(quote(column) for column in (*key, *values))
    returned = ", ".join(quote(column) for column in ("id", *key, values[0]))
    return (
        f"WITH v({column_list}) AS (VALUES {{values}}) "  # noqa: S608
        f"UPDATE {name} SET {assignments} FROM v WHERE {matched} RETURNING {returned}"
    )


def _update(table: RollupTable, rows: list[tuple]) -> list[tuple]:
    """Add the rows' differences to the stored rows of their keys; (id, *key, presence) of those."""
    key, values = _columns(table)
    statement = _update_statement(table, connection.vendor)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            document = [dict(zip((*key, *values), row, strict=True)) for row in rows]
            cursor.execute(statement, [orjson.dumps(document).decode()])
        else:
            placeholders = "(" + ", ".join(["%s"] * (len(key) + len(values))) + ")"
            params = [str(value) if isinstance(value, date) else value for row in rows for value in row]
            cursor.execute(statement.format(values=", ".join([placeholders] * len(rows))), params)
        return [_with_day_as_date(row) for row in cursor.fetchall()]


def _with_day_as_date(row: tuple) -> tuple:
    """(id, path version id, day, ...): SQLite returns the day as text."""
    day = row[2]
    return (*row[:2], date.fromisoformat(day) if isinstance(day, str) else day, *row[3:])


def _apply_batch(workspace: Workspace, table: RollupTable, rows: list[tuple]) -> Written:
    key_width = 1 + len(table.key_fields)
    found = _update(table, rows)
    updated_keys = {tuple(row[1:-1]) for row in found}
    to_insert = [row for row in rows if tuple(row[:key_width]) not in updated_keys]
    if any(value < 0 for row in to_insert for value in row[key_width:]):
        raise RollupsOutOfStep(
            f"{table.model.__name__} of workspace {workspace.pk}: a count would be negative"
        )
    bulk.insert(
        table.model,
        ("workspace", "path_version", *table.key_fields, *table.values),
        [(workspace.pk, *row) for row in to_insert],
    )
    emptied = [row[0] for row in found if row[-1] == 0]
    if emptied:
        table.model.objects.filter(pk__in=emptied).delete()
    return Written(created=len(to_insert), updated=len(found) - len(emptied), deleted=len(emptied))


def increments_apply(
    *, workspace: Workspace, moved: dict[RollupTable, list[tuple]], window_days: int
) -> Written:
    """Write the differences (from `differences`) to the rollup tables."""
    written = Written()
    for table, rows in moved.items():
        kept = (window_days,) * (len(table.values) - len(_counted(table)))
        rows_with_kept = [(*row, *kept) for row in rows]
        for start in range(0, len(rows_with_kept), ROWS_PER_STATEMENT):
            written.add(_apply_batch(workspace, table, rows_with_kept[start : start + ROWS_PER_STATEMENT]))
    return written
