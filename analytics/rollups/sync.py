"""The rollup tables, and writing the rows a rebuild aggregates from the facts over what is
stored: insert the new keys, update the changed values, delete the keys that vanished, touch
nothing else. A rebuild over correct rollups writes nothing. (The incremental refresh writes
differences instead: increments.py.)"""

from dataclasses import dataclass
from datetime import date

from django.db.models import Model

from analytics.models import (
    SEGMENT_FIELDS,
    ActivationTimeBucket,
    EnrollmentRollup,
    StepRollup,
    StepTimeBucket,
)
from analytics.rollups.aggregate import VersionRows
from tenancy.models import Workspace


@dataclass
class Written:
    created: int = 0
    updated: int = 0
    deleted: int = 0

    def add(self, other: "Written") -> None:
        self.created += other.created
        self.updated += other.updated
        self.deleted += other.deleted

    @property
    def changed(self) -> int:
        return self.created + self.updated + self.deleted


@dataclass(frozen=True)
class RollupTable:
    model: type[Model]
    extra_key: tuple[str, ...]
    values: tuple[str, ...]

    @property
    def key_fields(self) -> tuple[str, ...]:
        return ("day", *SEGMENT_FIELDS, *self.extra_key)


ENROLLMENTS = RollupTable(
    EnrollmentRollup, (), ("enrolled", "started", "completed", "activated", "activation_window_days")
)
ACTIVATION_BUCKETS = RollupTable(ActivationTimeBucket, ("bucket",), ("count",))
STEPS = RollupTable(StepRollup, ("step_key",), ("entered", "advanced", "completed"))
STEP_BUCKETS = RollupTable(StepTimeBucket, ("step_key", "bucket"), ("count",))
TABLES = (ENROLLMENTS, ACTIVATION_BUCKETS, STEPS, STEP_BUCKETS)


def _as_values(table: RollupTable, value) -> dict:
    return value if isinstance(value, dict) else {"count": value}


# bulk_update writes one UPDATE ... CASE WHEN id = ... per batch, and PostgreSQL's time on that
# statement grows with the square of its branches: 10,000 rows took 5.6 s in one statement and
# 0.24 s in batches of 1,000 (bench/analytics.py at 1M users: one refresh's update ran > 69 s).
WRITE_BATCH_SIZE = 1000


def sync_table(
    table: RollupTable,
    *,
    workspace: Workspace,
    path_version_id: int,
    days: set[date],
    computed: dict[tuple, object],
) -> Written:
    stored = {
        tuple(getattr(row, name) for name in table.key_fields): row
        for row in table.model.objects.filter(
            workspace=workspace, path_version_id=path_version_id, day__in=days
        )
    }
    to_create, to_update = [], []
    for key, value in computed.items():
        values = _as_values(table, value)
        row = stored.pop(key, None)
        if row is None:
            fields = dict(zip(table.key_fields, key, strict=True))
            to_create.append(
                table.model(workspace=workspace, path_version_id=path_version_id, **fields, **values)
            )
        elif any(getattr(row, name) != values[name] for name in values):
            for name, number in values.items():
                setattr(row, name, number)
            to_update.append(row)
    table.model.objects.bulk_create(to_create, batch_size=WRITE_BATCH_SIZE)
    if to_update:
        table.model.objects.bulk_update(to_update, list(table.values), batch_size=WRITE_BATCH_SIZE)
    if stored:
        table.model.objects.filter(pk__in=[row.pk for row in stored.values()]).delete()
    return Written(len(to_create), len(to_update), len(stored))


def sync_version(
    *, workspace: Workspace, path_version_id: int, days: set[date], rows: VersionRows, window_days: int
) -> Written:
    enrollments = {
        key: {**value, "activation_window_days": window_days} for key, value in rows.enrollments.items()
    }
    computed = (
        (ENROLLMENTS, enrollments),
        (ACTIVATION_BUCKETS, rows.activation_buckets),
        (STEPS, rows.steps),
        (STEP_BUCKETS, rows.step_buckets),
    )
    written = Written()
    for table, values in computed:
        written.add(
            sync_table(
                table, workspace=workspace, path_version_id=path_version_id, days=days, computed=values
            )
        )
    return written
