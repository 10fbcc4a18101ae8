"""CohortMember and ActivityWeek lose their workspace index (as 0007 did for the rollups): their
rows are read by person or all together, and every new active week wrote one more entry into an
index of 6M rows at 1M users. Only the indexes go; the foreign key constraints stay."""

import django.db.models.deletion
from django.db import migrations, models

# (model, its workspace index as Django named it)
INDEXES = [
    ("activityweek", "analytics_activityweek_workspace_id_0e27fe26"),
    ("cohortmember", "analytics_cohortmember_workspace_id_0b73079a"),
]


class Migration(migrations.Migration):
    dependencies = [("analytics", "0008_rollup_hot_updates"), ("onboarding", "0012_enrollment_enrolled_at_index")]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name=model,
                    name="workspace",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="+",
                        to="onboarding.workspace",
                    ),
                )
                for model, _ in INDEXES
            ],
            database_operations=[
                migrations.RunSQL(
                    [f"DROP INDEX IF EXISTS {name}" for _, name in INDEXES],
                    [f"CREATE INDEX IF NOT EXISTS {name} ON analytics_{model} (workspace_id)" for model, name in INDEXES],
                )
            ],
        )
    ]
