"""Run one stuck-detection pass now (the scheduler runs the same pass every 15 minutes)."""

from django.core.management.base import BaseCommand, CommandError

from core.progress_bar import progress_line
from onboarding import selectors
from onboarding.models import Workspace
from onboarding.stuck import rules as stuck
from onboarding.stuck import services as enrollment_signals


class Command(BaseCommand):
    help = "Flag enrollments stuck on a step and resolve those that moved on; prints counts."

    def add_arguments(self, parser):
        parser.add_argument("--workspace", metavar="SLUG", help="Only this workspace (default: all)")

    def handle(self, *args, workspace: str | None, **options):
        if workspace:
            found = selectors.workspace_get_by_slug(slug=workspace)
            if found is None:
                raise CommandError(f"No workspace with slug {workspace!r}")
            workspaces = [found]
        else:
            workspaces = Workspace.objects.order_by("slug").iterator()
        flagged = resolved = count = 0
        for each in workspaces:
            report = enrollment_signals.stuck_detect(
                workspace=each, on_progress=progress_line(self.stderr, f"{each.slug}: enrollments")
            )
            self.stdout.write(
                f"{each.slug}: {report.active} active on a step, {report.flagged} newly stuck, "
                f"{report.away} over the limit but away (no event for {stuck.AWAY_AFTER.days} days), "
                f"{report.resolved} resolved, {report.not_judged} not judged"
            )
            for reason in report.not_judged_steps:
                self.stdout.write(f"  {reason}")
            flagged += report.flagged
            resolved += report.resolved
            count += 1
        self.stdout.write(f"Done: {flagged} newly stuck, {resolved} resolved in {count} workspace(s).")
