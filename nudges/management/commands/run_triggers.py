"""Run one pass of the time-based triggers now (the scheduler runs it every few minutes), then
send the deferred nudges whose time has come."""

from collections import Counter
from collections.abc import Iterable

from core.commands import PeriodicPassCommand
from nudges.delivery import pipeline
from nudges.triggers import engine as triggers
from tenancy import selectors
from tenancy.models import Workspace


class Command(PeriodicPassCommand):
    help = "Fire stuck, inactivity, re-engagement and custom triggers; send nudges that are due."

    def workspace_by_slug(self, slug: str) -> Workspace | None:
        return selectors.workspace_get_by_slug(slug=slug)

    def all_workspaces(self) -> Iterable[Workspace]:
        return Workspace.objects.order_by("slug")

    def run_pass(self, workspace: Workspace) -> dict[str, int]:
        report = triggers.scan(workspace=workspace)
        if report.created or report.duplicates:
            self.stdout.write(
                f"{workspace.slug}: {report.created} nudges triggered, {report.duplicates} already sent"
            )
        return {"created": report.created, "duplicates": report.duplicates}

    def summary(self, *, totals: Counter[str], workspaces: int) -> str:
        due = pipeline.process_due()
        return (
            f"Done: {totals['created']} nudges triggered ({totals['duplicates']} occasions had theirs "
            f"already) in {workspaces} workspace(s); {due} due nudges sent to the pipeline."
        )
