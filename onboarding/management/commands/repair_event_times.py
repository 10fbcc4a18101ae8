"""Find and rewrite event and progress times no Python process can read (onboarding.ingestion.time_repair)."""

from django.apps import apps
from django.core.management.base import BaseCommand

from onboarding.ingestion import time_repair


class Command(BaseCommand):
    help = (
        "Rewrite times outside 2000-01-01..2100-01-01 UTC stored before ingestion refused them "
        "(year 10000 or 1 BC make rows unreadable): an event's timestamp becomes its received_at, "
        "the client's own times null, progress times the row's server-side time. With --check, "
        "only count them (exit status 1 when there are any). Run rebuild_progress afterwards."
    )

    def add_arguments(self, parser):
        parser.add_argument("--check", action="store_true", help="Count the rows; change nothing.")

    def handle(self, *args, check: bool = False, **options):
        if check:
            counts = time_repair.out_of_range_counts(apps=apps)
        else:
            counts = time_repair.repair_out_of_range_times(apps=apps)
        if not counts:
            self.stdout.write("No time out of range.")
            return
        verb = "out of range" if check else "rewritten"
        for name, count in counts.items():
            self.stdout.write(f"{name}: {count:,} {verb}")
        if check:
            raise SystemExit(1)
        self.stdout.write(
            "Now run `manage.py rebuild_progress` to re-derive progress from the repaired events."
        )
