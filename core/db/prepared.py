"""Querysets the ORM compiles once per process, for the reads that every request makes.

Building a query (resolving lookups and joins, quoting a hundred columns) costs the ORM more CPU
than PostgreSQL spends answering it: of the enrollment lookup's 1.7 ms of CPU here, 1.5 ms were
the ORM's and 0.2 ms the database driver's. A `PreparedQuery` has the ORM write the SQL once per
database vendor, from a queryset whose filter values are placeholders; each call binds the real
values, and turns the rows into models exactly as a queryset does (the ORM's converters, then
`Model.from_db` and Django's own populators for the select_related objects; for a `values_list()`
queryset, the converted rows).

Only for querysets whose SQL does not depend on the values: no None, and an `__in` list only of
a fixed length (a PreparedQuery per length, each value a placeholder of its own).
"""

from collections.abc import Callable
from typing import Any

from django.db import connection
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators


class _Compiled:
    def __init__(self, queryset: QuerySet, placeholders: tuple):
        compiler = queryset.query.get_compiler(connection=connection)
        self.sql, params = compiler.as_sql()
        if len(set(placeholders)) != len(placeholders) or sorted(map(repr, params)) != sorted(
            map(repr, placeholders)
        ):
            raise ValueError(
                f"the query binds {tuple(params)!r}, not its placeholders {placeholders!r}: give "
                "each filter value a placeholder of its own, distinct from the others"
            )
        # Where each value goes: the SQL binds them in its own order, not the caller's.
        self.order = [placeholders.index(param) for param in params]
        select, klass_info = compiler.select, compiler.klass_info
        self.converters = compiler.get_converters([column for column, _, _ in select])
        self.model = None
        if queryset.query.values_select or klass_info is None:  # values_list(): rows it is
            return
        self.model = klass_info["model"]
        fields = klass_info["select_fields"]
        self.start, self.end = fields[0], fields[-1] + 1
        self.attnames = [column[0].target.attname for column in select[self.start : self.end]]
        self.populators = get_related_populators(klass_info, select, connection.alias)


class PreparedQuery:
    """`PreparedQuery(build, *placeholders)`: `build(*placeholders)` returns the queryset, and
    `.all(*values)` (model instances) or `.rows(*values)` (a values_list's rows) runs it with
    `values` (as the database takes them: ints, strings) in the placeholders' places.
    Placeholders are distinct values of the filters' types."""

    def __init__(self, build: Callable[..., QuerySet], *placeholders: Any):
        self._build = build
        self._placeholders = placeholders
        self._compiled: dict[str, _Compiled] = {}

    def _for_connection(self) -> _Compiled:
        # Built on first use, inside the caller's transaction (a locking query needs one).
        compiled = self._compiled.get(connection.vendor)
        if compiled is None:
            compiled = _Compiled(self._build(*self._placeholders), self._placeholders)
            self._compiled[connection.vendor] = compiled
        return compiled

    def rows(self, *values: Any) -> list[list]:
        """The rows, their values converted as the ORM converts them (a `values_list()` queryset)."""
        return self._rows(self._for_connection(), values)

    def all(self, *values: Any) -> list[Model]:
        """The model instances, with their select_related objects."""
        compiled = self._for_connection()
        if compiled.model is None:
            raise TypeError("a values_list() query has rows, not model instances: call .rows()")
        found = []
        for row in self._rows(compiled, values):
            instance = compiled.model.from_db(
                connection.alias, compiled.attnames, row[compiled.start : compiled.end]
            )
            for populator in compiled.populators:
                populator.populate(row, instance)
            found.append(instance)
        return found

    @staticmethod
    def _rows(compiled: _Compiled, values: tuple) -> list[list]:
        with connection.cursor() as cursor:
            cursor.execute(compiled.sql, [values[index] for index in compiled.order])
            fetched = cursor.fetchall()
        rows = []
        for found in fetched:
            row = list(found)
            for position, (converters, expression) in compiled.converters.items():
                for converter in converters:
                    row[position] = converter(row[position], expression, connection)
            rows.append(row)
        return rows
