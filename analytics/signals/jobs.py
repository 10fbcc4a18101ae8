"""RQ entry point of the nightly signals merge (config.cron). Safe to run twice: it rewrites the
same report objects from the same signal objects."""

from datetime import date, timedelta

from django.utils import timezone

from analytics.signals import services
from analytics.signals.storage import signals_storage


def merge_signals_job(day: str | None = None) -> dict[str, int]:
    """Merge one UTC day (ISO date; default yesterday, whose sessions are over) for every
    workspace with signals, and write each workspace's summary.json and report.html."""
    merged_day = date.fromisoformat(day) if day else timezone.now().date() - timedelta(days=1)
    written = services.signals_reports_write(storage=signals_storage(), day=merged_day)
    return {"workspaces": len(written), "pairs": sum(report.summary["counts"]["pairs"] for report in written)}
