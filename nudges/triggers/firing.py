"""Firing a trigger: one nudge per (trigger, user, occasion), collected and handed to the pipeline
in batches. Every trigger kind fires through `fire`."""

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from nudges import services
from nudges.delivery.dispatch import PIPELINE_BATCH, pipeline_enqueue
from nudges.models import Nudge, Trigger
from onboarding.models import Enrollment
from tenancy.models import EndUser

logger = logging.getLogger(__name__)

SCAN_BATCH = 500  # rows read at a time by the periodic scans
_outbox = threading.local()


@dataclass
class ScanReport:
    created: int = 0  # nudges created (and sent to the pipeline)
    duplicates: int = 0  # occasions that had their nudge already


@contextmanager
def dispatching() -> Iterator[None]:
    """Collect the nudges fired inside, and send them on in batches (at the latest on exit)."""
    if getattr(_outbox, "ids", None) is not None:
        yield  # nested: the outer block sends
        return
    _outbox.ids = []
    try:
        yield
    finally:
        ids, _outbox.ids = _outbox.ids, None
        pipeline_enqueue(ids)


def _outbox_add(nudge_id: int) -> None:
    ids = getattr(_outbox, "ids", None)
    if ids is None:
        pipeline_enqueue([nudge_id])
        return
    ids.append(nudge_id)
    if len(ids) >= PIPELINE_BATCH:
        pipeline_enqueue(ids[:])
        ids.clear()


def fire(
    trigger: Trigger,
    end_user: EndUser,
    occasion: str,
    *,
    enrollment: Enrollment | None,
    target_step_key: str,
    reason: str,
    report: ScanReport | None = None,
) -> Nudge | None:
    """The trigger's nudge for this occasion, sent to the pipeline; None when the occasion had
    its nudge already (counted in `report` either way)."""
    nudge = services.nudge_create(
        trigger=trigger,
        end_user=end_user,
        occasion=occasion,
        enrollment=enrollment,
        target_step_key=target_step_key,
        reason=reason,
    )
    if report is not None:
        if nudge is None:
            report.duplicates += 1
        else:
            report.created += 1
    if nudge is not None:
        _outbox_add(nudge.pk)
        logger.info(
            "nudge.triggered",
            extra={"nudge_id": nudge.pk, "trigger_id": trigger.pk, "kind": trigger.kind},
        )
    return nudge
