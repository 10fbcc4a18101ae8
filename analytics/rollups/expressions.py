"""Database expressions the rollups aggregate with, written for PostgreSQL and SQLite alike."""

from django.db.models import FloatField, Func, IntegerField

from analytics.rollups.buckets import BUCKETS_PER_DOUBLING


class SecondsBetween(Func):
    """end - start in seconds (float)."""

    arity = 2
    output_field = FloatField()

    def as_postgresql(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            template="EXTRACT(EPOCH FROM (%(expressions)s))",
            arg_joiner=" - ",
            **extra_context,
        )

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(
            compiler,
            connection,
            template="((JULIANDAY(%(expressions)s)) * 86400.0)",
            arg_joiner=") - JULIANDAY(",
            **extra_context,
        )


class LogBucket(Func):
    """The log bucket (analytics.rollups.buckets) of a duration in seconds: floor(8 log2 max(d, 1))."""

    arity = 1
    output_field = IntegerField()

    def as_postgresql(self, compiler, connection, **extra_context):
        template = (
            f"CAST(FLOOR({BUCKETS_PER_DOUBLING} * LN(GREATEST(%(expressions)s, 1)) / LN(2)) AS integer)"
        )
        return self.as_sql(compiler, connection, template=template, **extra_context)

    def as_sqlite(self, compiler, connection, **extra_context):
        # The argument is at least 1, so the logarithm is not negative and CAST truncates as FLOOR.
        template = f"CAST({BUCKETS_PER_DOUBLING} * LN(MAX(%(expressions)s, 1.0)) / LN(2) AS INTEGER)"
        return self.as_sql(compiler, connection, template=template, **extra_context)
