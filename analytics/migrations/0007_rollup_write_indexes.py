"""The rollup and fact tables lose their single-column foreign key indexes: the (workspace, day)
indexes and the unique keys (path version first) serve those lookups, and every index is one more
write for each rollup row a refresh changes. Only the indexes go (the state's db_index=False); the
foreign key constraints stay as they are, not dropped and validated again over millions of rows."""

import django.db.models.deletion
from django.db import migrations, models

# (model, foreign key, its index as Django named it)
INDEXES = [
    ("activationtimebucket", "path_version", "analytics_activationtimebucket_path_version_id_36dda4a1"),
    ("activationtimebucket", "workspace", "analytics_activationtimebucket_workspace_id_7061ba1b"),
    ("enrollmentfact", "workspace", "analytics_enrollmentfact_workspace_id_5be348f6"),
    ("enrollmentrollup", "path_version", "analytics_enrollmentrollup_path_version_id_12fec68e"),
    ("enrollmentrollup", "workspace", "analytics_enrollmentrollup_workspace_id_f336797f"),
    ("stepfact", "workspace", "analytics_stepfact_workspace_id_dec1d8dd"),
    ("steprollup", "path_version", "analytics_steprollup_path_version_id_6dddf3e0"),
    ("steprollup", "workspace", "analytics_steprollup_workspace_id_e713c7d1"),
    ("steptimebucket", "path_version", "analytics_steptimebucket_path_version_id_56beda71"),
    ("steptimebucket", "workspace", "analytics_steptimebucket_workspace_id_52f08722"),
]
TARGETS = {"path_version": "paths.pathversion", "workspace": "onboarding.workspace"}


def _field(field: str) -> models.ForeignKey:
    return models.ForeignKey(
        db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name="+", to=TARGETS[field]
    )


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0006_b_cohort_counts"),
        ("onboarding", "0012_enrollment_enrolled_at_index"),
        ("paths", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(model_name=model, name=field, field=_field(field))
                for model, field, _ in INDEXES
            ],
            database_operations=[
                migrations.RunSQL(
                    [f"DROP INDEX IF EXISTS {name}" for _, _, name in INDEXES],
                    [
                        f"CREATE INDEX IF NOT EXISTS {name} ON analytics_{model} ({field}_id)"
                        for model, field, name in INDEXES
                    ],
                )
            ],
        )
    ]
