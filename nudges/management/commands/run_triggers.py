"""Run one pass of the time-based triggers now (the scheduler runs it every few minutes), then
send the deferred nudges whose time has come."""

from django.core.management.base import BaseCommand, CommandError

from nudges.delivery import pipeline
from nudges.triggers import engine as triggers
from onboarding import selectors
from onboarding.models import Workspace


class Command(BaseCommand):
    help = "Fire stuck, inactivity, re-engagement and custom triggers; send nudges that are due."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", metavar="SLUG", help="Only this workspace (default: all)")

    def handle(self, *args, workspace: str | None, **options):
        if workspace:
            found = selectors.workspace_get_by_slug(slug=workspace)
            if found is None:
                raise CommandError(f"No workspace with slug {workspace!r}")
            workspaces = [found]
        else:
            workspaces = list(Workspace.objects.order_by("slug"))
        created = duplicates = 0
        for each in workspaces:
            report = triggers.scan(workspace=each)
            if report.created or report.duplicates:
                self.stdout.write(
                    f"{each.slug}: {report.created} nudges triggered, {report.duplicates} already sent"
                )
            created += report.created
            duplicates += report.duplicates
        due = pipeline.process_due()
        self.stdout.write(
            f"Done: {created} nudges triggered ({duplicates} occasions had theirs already) in "
            f"{len(workspaces)} workspace(s); {due} due nudges sent to the pipeline."
        )
