"""Cohort matrices (CohortCount) kept from CohortMember and ActivityWeek, whose end_user_id is no
longer a foreign key (a deleted profile's rows stay until a refresh subtracts them). The two tables
are created anew and the event rollups' cursors cleared, so the next refresh rebuilds them all."""

import django.db.models.deletion
from django.db import migrations, models

SEGMENT_COLUMNS = [
    ("persona", models.CharField(blank=True, max_length=100)),
    ("signup_source", models.CharField(blank=True, max_length=100)),
    ("company_size", models.CharField(blank=True, max_length=100)),
    ("use_case", models.CharField(blank=True, max_length=100)),
]


def _id():
    return (
        "id",
        models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID"),
    )


def _workspace():
    return (
        "workspace",
        models.ForeignKey(
            on_delete=django.db.models.deletion.CASCADE, related_name="+", to="onboarding.workspace"
        ),
    )


def _cohort_columns():
    return [
        ("signup_day", models.DateField()),
        ("signup_week", models.IntegerField()),
        ("first_enrolled_day", models.DateField(blank=True, null=True)),
        ("first_enrolled_week", models.IntegerField(blank=True, null=True)),
        *SEGMENT_COLUMNS,
    ]


def _start_over(apps, schema_editor):
    apps.get_model("analytics", "EventRollupCursor").objects.all().delete()
    apps.get_model("analytics", "EventDayRollup").objects.all().delete()


class Migration(migrations.Migration):
    dependencies = [
        ("analytics", "0005_c_rollup_read_indexes"),
        ("onboarding", "0012_enrollment_enrolled_at_index"),
    ]

    operations = [
        migrations.DeleteModel(name="ActivityWeek"),
        migrations.DeleteModel(name="CohortMember"),
        migrations.CreateModel(
            name="CohortMember",
            fields=[
                _id(),
                *_cohort_columns(),
                ("end_user_id", models.BigIntegerField(unique=True)),
                _workspace(),
            ],
        ),
        migrations.CreateModel(
            name="ActivityWeek",
            fields=[
                _id(),
                *_cohort_columns(),
                ("end_user_id", models.BigIntegerField()),
                ("week", models.IntegerField()),
                ("counted", models.BooleanField(default=False)),
                _workspace(),
            ],
            options={
                "indexes": [
                    models.Index(
                        condition=models.Q(("counted", False)),
                        fields=["workspace"],
                        name="activityweek_uncounted_idx",
                    )
                ],
                "constraints": [
                    models.UniqueConstraint(fields=("end_user_id", "week"), name="activityweek_unique")
                ],
            },
        ),
        migrations.CreateModel(
            name="CohortCount",
            fields=[
                _id(),
                ("kind", models.CharField(choices=[("S", "signup"), ("E", "first enrolment")], max_length=1)),
                ("cohort_day", models.DateField()),
                ("cohort_week", models.IntegerField()),
                ("since", models.IntegerField()),
                *SEGMENT_COLUMNS,
                ("users", models.BigIntegerField(default=0)),
                _workspace(),
            ],
            options={
                "constraints": [
                    models.UniqueConstraint(
                        fields=(
                            "workspace",
                            "kind",
                            "cohort_day",
                            "since",
                            "persona",
                            "signup_source",
                            "company_size",
                            "use_case",
                        ),
                        name="cohortcount_unique",
                    )
                ],
            },
        ),
        migrations.RunPython(_start_over, migrations.RunPython.noop),
    ]
