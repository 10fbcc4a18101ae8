"""Rewrite event and progress times outside 2000-01-01..2100-01-01 UTC, stored before ingestion
refused them (onboarding.ingestion.event_times): PostgreSQL held year 10000 and 1 BC, which no Python process
can read back. SQL only, so the unreadable rows are never read (onboarding.ingestion.time_repair)."""

from django.db import migrations

from onboarding.ingestion import time_repair


def repair(apps, schema_editor):
    time_repair.repair_out_of_range_times(apps=apps)


class Migration(migrations.Migration):
    dependencies = [
        ("onboarding", "0008_alter_workspace_options"),
    ]

    operations = [
        migrations.RunPython(repair, migrations.RunPython.noop, elidable=True),
    ]
