"""RQ entry points for analytics: ids in, load, call one service. Safe to run twice."""

import logging

from analytics.rollups import services as rollups
from tenancy.models import Workspace

logger = logging.getLogger(__name__)


def refresh_rollups_job(workspace_id: int | None = None) -> dict[str, int]:
    """The incremental rollup refresh of one workspace, or of every workspace (the periodic run).
    One workspace failing is logged and the others still refresh."""
    workspaces = Workspace.objects.order_by("pk")
    if workspace_id is not None:
        workspaces = workspaces.filter(pk=workspace_id)
    totals = {"workspaces": 0, "slices": 0, "rows_changed": 0, "failed": 0}
    for workspace in workspaces.iterator():
        try:
            report = rollups.rollups_refresh(workspace=workspace)
        except Exception:
            logger.exception("analytics.rollups.refresh_failed", extra={"workspace_id": workspace.pk})
            totals["failed"] += 1
            continue
        totals["workspaces"] += 1
        totals["slices"] += report.slices
        totals["rows_changed"] += report.written.changed
    return totals
