"""Ingestion's write service: a batch of Segment calls validated, stored and reported on.

The API views, the demo seeding and the tests all call `events_ingest`; the steps it takes
(validation, identity resolution, storing, progress) are in onboarding.ingestion.pipeline.
"""

import logging
from datetime import datetime
from typing import Any

from onboarding.ingestion import pipeline
from onboarding.ingestion.pipeline import IngestResult
from tenancy.models import Workspace

logger = logging.getLogger(__name__)


def events_ingest(
    *,
    workspace: Workspace,
    raw_events: list[Any],
    received_at: datetime,
    call_type: str | None = None,
    batch_context: dict | None = None,
    batch_sent_at: datetime | None = None,
) -> IngestResult:
    """Store Segment calls; valid ones are committed before this returns, invalid ones reported
    by index."""
    valid, rejected = pipeline.validate_batch(
        raw_events,
        received_at=received_at,
        call_type=call_type,
        batch_context=batch_context,
        batch_sent_at=batch_sent_at,
    )
    new_ids = pipeline.store_batch(workspace=workspace, events=valid, received_at=received_at)
    if rejected:
        logger.info(
            "events.rejected",
            extra={"workspace_id": workspace.pk, "rejected": len(rejected), "accepted": len(valid)},
        )
    return IngestResult(accepted=len(valid), stored=len(new_ids), rejected=rejected)
