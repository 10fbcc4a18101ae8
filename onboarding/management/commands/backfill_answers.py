"""Rebuild answer snapshots and totals from every completed enrollment; safe to run again."""

from django.core.management.base import BaseCommand, CommandError

from core.progress_bar import progress_line
from onboarding.progress import answers
from tenancy import selectors


class Command(BaseCommand):
    help = "Replay completed enrollments through the answer aggregation (idempotent)."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", metavar="SLUG", help="Only this workspace (default: all)")

    def handle(self, *args, workspace: str | None, **options):
        scope = None
        if workspace:
            scope = selectors.workspace_get_by_slug(slug=workspace)
            if scope is None:
                raise CommandError(f"No workspace with slug {workspace!r}")
        report = answers.answers_backfill(workspace=scope, on_progress=progress_line(self.stderr, "replayed"))
        self.stdout.write(
            f"Recorded {report.recorded} completed enrollment(s); "
            f"removed {report.removed} snapshot(s) of enrollments no longer completed."
        )
