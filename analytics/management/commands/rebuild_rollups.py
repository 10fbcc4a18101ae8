"""Rebuild the analytics rollups in full (the scheduler refreshes them incrementally every five
minutes); prints a progress line per workspace."""

import time
from collections import Counter
from collections.abc import Iterable

from analytics.events import rollups as event_rollups
from analytics.rollups import services as rollups
from core.commands import PeriodicPassCommand
from core.progress_bar import progress_line
from tenancy import selectors
from tenancy.models import Workspace


class Command(PeriodicPassCommand):
    help = (
        "Recompute every enrollment fact and analytics rollup row from the enrollments and step completions."
    )

    def workspace_by_slug(self, slug: str) -> Workspace | None:
        return selectors.workspace_get_by_slug(slug=slug)

    def all_workspaces(self) -> Iterable[Workspace]:
        return Workspace.objects.order_by("slug").iterator()

    def run_pass(self, workspace: Workspace) -> dict[str, int]:
        report = rollups.rollups_rebuild(
            workspace=workspace,
            on_progress=progress_line(self.stderr, f"{workspace.slug}: enrollments"),
        )
        started = time.monotonic()
        events = event_rollups.event_rollups_rebuild(
            workspace=workspace, on_progress=progress_line(self.stderr, f"{workspace.slug}: event rollups")
        )
        self.stdout.write(
            f"{workspace.slug}: event rollups: {events.people} people, {events.activity_weeks} active "
            f"weeks, {events.day_names} day x name counts in {time.monotonic() - started:.1f} s"
        )
        written = report.written
        self.stdout.write(
            f"{workspace.slug}: {report.slices} slices, {report.enrollments} enrollments, "
            f"{written.created} rows created, {written.updated} updated, {written.deleted} deleted"
        )
        return {"slices": report.slices, "changed": written.changed}

    def summary(self, *, totals: Counter[str], workspaces: int) -> str:
        return (
            f"Done: {totals['slices']} slices rebuilt, {totals['changed']} rows changed in "
            f"{workspaces} workspace(s)."
        )
