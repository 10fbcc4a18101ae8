"""A BRIN index on Event.received_at, PostgreSQL only: the ops dashboard counts the events received
per minute and hour over the last day. Events are appended in the order they are received, so a
block-range index of a few pages bounds that scan to the recent blocks, at next to no cost per
insert (new ranges are summarised by vacuum), where a B-tree would be maintained on every event.
Not in Event.Meta (a BrinIndex there would be created on SQLite too, which has no BRIN); SQLite,
the embedded default for small data, scans."""

from django.db import migrations

INDEX = "event_received_brin"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON onboarding_event USING brin (received_at)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [
        ("onboarding", "0010_workspace_product_base_url"),
    ]

    operations = [migrations.RunPython(create, drop, elidable=False)]
