"""Run anomaly detection now (the scheduler runs it hourly): every published path version's
drop-off by step and activation rate against their trailing baseline; new alerts are notified."""

from collections import Counter
from collections.abc import Iterable

from analytics.alerts import services
from core.commands import PeriodicPassCommand
from tenancy import selectors
from tenancy.models import Workspace


class Command(PeriodicPassCommand):
    help = "Detect anomalies in drop-off by step and activation rate; raise and notify new alerts."

    def workspace_by_slug(self, slug: str) -> Workspace | None:
        return selectors.workspace_get_by_slug(slug=slug)

    def all_workspaces(self) -> Iterable[Workspace]:
        return Workspace.objects.order_by("slug").iterator()

    def run_pass(self, workspace: Workspace) -> dict[str, int]:
        report = services.alerts_detect(workspace=workspace)
        self.stdout.write(
            f"{workspace.slug}: {report.series} series judged, {report.raised} alert(s) raised, "
            f"{report.failures} failed"
        )
        return {"series": report.series, "raised": report.raised, "failures": report.failures}

    def summary(self, *, totals: Counter[str], workspaces: int) -> str:
        return (
            f"Done: {totals['raised']} alert(s) raised from {totals['series']} series in "
            f"{workspaces} workspace(s); {totals['failures']} series failed."
        )
