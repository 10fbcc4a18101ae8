"""A management command that runs now one pass the scheduler runs periodically (stuck detection,
trigger scans), over every workspace or the one named by --workspace, prints a line per
workspace and a summary.

core knows no domain: a subclass says how to find workspaces (`workspace_by_slug`,
`all_workspaces`), what one pass over a workspace does (`run_pass`, which prints its own line and
returns counts to add up) and what the summary says (`summary`).
"""

from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser


class PeriodicPassCommand(BaseCommand):
    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--workspace", metavar="SLUG", help="Only this workspace (default: all)")

    def handle(self, *args: Any, workspace: str | None = None, **options: Any) -> None:
        totals: Counter[str] = Counter()
        passes = 0
        for each in self._workspaces(workspace):
            totals.update(self.run_pass(each))
            passes += 1
        self.stdout.write(self.summary(totals=totals, workspaces=passes))

    def _workspaces(self, slug: str | None) -> Iterable[Any]:
        if not slug:
            return self.all_workspaces()
        found = self.workspace_by_slug(slug)
        if found is None:
            raise CommandError(f"No workspace with slug {slug!r}")
        return [found]

    def workspace_by_slug(self, slug: str) -> Any | None:
        """The workspace with this slug; None when there is none."""
        raise NotImplementedError

    def all_workspaces(self) -> Iterable[Any]:
        """Every workspace, in the order the passes run."""
        raise NotImplementedError

    def run_pass(self, workspace: Any) -> Mapping[str, int]:
        """One pass over the workspace; prints what it did and returns the counts to add up."""
        raise NotImplementedError

    def summary(self, *, totals: Counter[str], workspaces: int) -> str:
        """The last line: what every pass did together."""
        raise NotImplementedError
