"""Insert many rows fast: COPY on PostgreSQL, bulk_create elsewhere.

Django's bulk_create spends most of its time preparing each value in Python (about 3,000 rows/s
here); COPY takes the rows as they are. Rows are dicts keyed by attname (`end_user_id`); a field
left out takes its Django default, an auto_now(_add) date the writing moment. Every date set in a
row is kept, auto_now_add or not (bulk_create would overwrite it, so it runs with the fields'
auto_now_add switched off: process-wide for the moment of the insert, so run this from a command,
a job or a test, never a thread serving requests). With `ids=True` the rows' primary keys are
reserved from the table's sequence first and returned in order.
"""

import json
import logging
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, models
from django.utils import timezone

BATCH_SIZE = 5000
logger = logging.getLogger(__name__)


@contextmanager
def _dates_as_given(model: type[models.Model]) -> Iterator[None]:
    fields = [each for each in model._meta.concrete_fields if getattr(each, "auto_now_add", False)]
    for each in fields:
        each.auto_now_add = False
    try:
        yield
    finally:
        for each in fields:
            each.auto_now_add = True


def _reserve_ids(model: type[models.Model], count: int) -> list[int]:
    table, column = model._meta.db_table, model._meta.pk.column
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [table, column, count],
        )
        return [row[0] for row in cursor.fetchall()]


def _copy(model: type[models.Model], rows: Sequence[dict], with_ids: bool) -> None:
    started, now = time.monotonic(), timezone.now()
    fields = [each for each in model._meta.concrete_fields if with_ids or not each.primary_key]
    defaults = []
    for each in fields:
        if getattr(each, "auto_now", False) or getattr(each, "auto_now_add", False):
            defaults.append(now)
        else:
            defaults.append(each.get_default())
    json_columns = [index for index, each in enumerate(fields) if isinstance(each, models.JSONField)]
    columns = ", ".join(connection.ops.quote_name(each.column) for each in fields)
    names = [each.attname for each in fields]
    statement = f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            values = [row.get(name, default) for name, default in zip(names, defaults, strict=True)]
            for index in json_columns:
                value = values[index]
                empty = value == {} or value == []
                values[index] = (
                    ("{}" if value == {} else "[]") if empty else json.dumps(value, cls=DjangoJSONEncoder)
                )
            copy.write_row(values)
    logger.info(
        "ml.simulation.copied",
        extra={
            "table": model._meta.db_table,
            "rows": len(rows),
            "seconds": round(time.monotonic() - started, 2),
        },
    )


def insert(model: type[models.Model], rows: Sequence[dict], *, ids: bool = False) -> list[int]:
    """Insert `rows` (dicts by attname); their primary keys in order when `ids`, else []."""
    if not rows:
        return []
    if connection.vendor == "postgresql":
        reserved = _reserve_ids(model, len(rows)) if ids else []
        if ids:
            rows = [dict(row, **{model._meta.pk.attname: pk}) for row, pk in zip(rows, reserved, strict=True)]
        _copy(model, rows, with_ids=ids)
        return reserved
    instances = [model(**row) for row in rows]
    with _dates_as_given(model):
        model.objects.bulk_create(instances, batch_size=BATCH_SIZE)
    return [each.pk for each in instances] if ids else []
