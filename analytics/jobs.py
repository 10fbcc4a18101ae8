"""RQ entry points for analytics: ids in, load, call one service. Safe to run twice."""

import logging
import time

from analytics.events import rollups as event_rollups
from analytics.rollups import services as rollups
from tenancy.models import Workspace

logger = logging.getLogger(__name__)


def refresh_rollups_job(workspace_id: int | None = None) -> dict[str, int]:
    """The incremental rollup refresh of one workspace, or of every workspace (the periodic run):
    the enrollment rollups, then the event rollups (cohorts, events per day and name). One
    workspace failing is logged and the others still refresh."""
    workspaces = Workspace.objects.order_by("pk")
    if workspace_id is not None:
        workspaces = workspaces.filter(pk=workspace_id)
    totals = {
        "workspaces": 0,
        "slices": 0,
        "rows_changed": 0,
        "event_windows": 0,
        "event_rollups_ms": 0,
        "failed": 0,
    }
    for workspace in workspaces.iterator():
        try:
            report = rollups.rollups_refresh(workspace=workspace)
            started = time.monotonic()
            totals["event_windows"] += event_rollups.event_rollups_refresh(workspace=workspace).windows
            totals["event_rollups_ms"] += round(1000 * (time.monotonic() - started))
        except Exception:
            logger.exception("analytics.rollups.refresh_failed", extra={"workspace_id": workspace.pk})
            totals["failed"] += 1
            continue
        totals["workspaces"] += 1
        totals["slices"] += report.slices
        totals["rows_changed"] += report.written.changed
    return totals


def rebuild_rollups_job(workspace_id: int) -> dict[str, int]:
    """The full rebuild of one workspace's rollups, queued when its activation window changes."""
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None:
        return {"slices": 0, "rows_changed": 0}
    report = rollups.rollups_rebuild(workspace=workspace)
    return {"slices": report.slices, "rows_changed": report.written.changed}
