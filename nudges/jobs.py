"""RQ entry points for nudges: ids in, load, call one service. Safe to run twice.

The top of nudges' stack: these import the services they call, and the code below enqueues them
by dotted name ("nudges.jobs.nudges_process_job") through core.jobs, never by importing this
module.
"""

import logging
from datetime import datetime

from nudges.delivery import conversion, pipeline
from nudges.triggers import engine as triggers

logger = logging.getLogger(__name__)


def progress_changed_job(items: list[tuple[int, bool, list[str], str | None]]) -> None:
    """New enrollments (welcome) and completed steps (milestones, conversions), from
    nudges.triggers.receivers: [(enrollment id, created, step keys completed, completed at)]."""
    for enrollment_id, created, step_keys, completed_at in items:
        at = datetime.fromisoformat(completed_at) if completed_at else None
        if step_keys and at is not None:
            conversion.conversions_record(enrollment_id=enrollment_id, step_keys=step_keys, completed_at=at)
        triggers.on_progress(enrollment_id=enrollment_id, created=created, step_keys=step_keys)


def events_stored_job(items: list[tuple[int, int, str, str, str]]) -> None:
    """Named events just stored, for "A without B within T" triggers:
    [(workspace id, end user id, name, message id, timestamp)]."""
    triggers.on_events(items)


def nudge_process_job(nudge_id: int) -> None:
    """Take one queued (or due deferred) nudge through the pipeline (nudges.delivery.pipeline)."""
    pipeline.nudge_process(nudge_id=nudge_id)


def nudges_process_job(nudge_ids: list[int]) -> None:
    """Take a small batch of nudges through the pipeline, leased together, each on its own: one
    that fails unexpectedly is logged (and picked up again when its lease runs out), the others go
    on. Re-running it (an abandoned job requeued from the admin's queue view) sends nothing twice:
    only nudges still due are claimed."""
    pipeline.nudges_process(nudge_ids=nudge_ids)


def triggers_scan_job() -> dict[str, int]:
    """The periodic pass of the time-based triggers over every workspace."""
    return triggers.scan_all()


def nudges_due_job() -> int:
    """Deferred nudges whose time has come, and every nudge whose lease ran out."""
    return pipeline.process_due()
