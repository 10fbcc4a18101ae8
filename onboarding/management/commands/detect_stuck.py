"""Run one stuck-detection pass now (the scheduler runs the same pass every 15 minutes)."""

from collections import Counter
from collections.abc import Iterable

from core.commands import PeriodicPassCommand
from core.progress_bar import progress_line
from onboarding.stuck import rules as stuck
from onboarding.stuck import services as enrollment_signals
from tenancy import selectors
from tenancy.models import Workspace


class Command(PeriodicPassCommand):
    help = "Flag enrollments stuck on a step and resolve those that moved on; prints counts."

    def workspace_by_slug(self, slug: str) -> Workspace | None:
        return selectors.workspace_get_by_slug(slug=slug)

    def all_workspaces(self) -> Iterable[Workspace]:
        return Workspace.objects.order_by("slug").iterator()

    def run_pass(self, workspace: Workspace) -> dict[str, int]:
        report = enrollment_signals.stuck_detect(
            workspace=workspace, on_progress=progress_line(self.stderr, f"{workspace.slug}: enrollments")
        )
        self.stdout.write(
            f"{workspace.slug}: {report.active} active on a step, {report.flagged} newly stuck, "
            f"{report.away} over the limit but away (no event for {stuck.AWAY_AFTER.days} days), "
            f"{report.resolved} resolved, {report.not_judged} not judged"
        )
        for reason in report.not_judged_steps:
            self.stdout.write(f"  {reason}")
        return {"flagged": report.flagged, "resolved": report.resolved}

    def summary(self, *, totals: Counter[str], workspaces: int) -> str:
        return (
            f"Done: {totals['flagged']} newly stuck, {totals['resolved']} resolved in "
            f"{workspaces} workspace(s)."
        )
