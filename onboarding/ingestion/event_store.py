"""Bulk, idempotent writes of events: one INSERT ... ON CONFLICT DO NOTHING per chunk.

RETURNING tells which message ids are new, so profile updates and progress evaluation run
only for events stored for the first time. Works on PostgreSQL and SQLite (>= 3.35).
"""

from collections.abc import Sequence

from core.db import bulk
from onboarding.models import Event

# Every column of an event as stored, in insert order: also the event admin's fields and, but for the
# two keys, the GDPR bundle's (guardrails/gdpr/export.py).
FIELDS = (
    "workspace",
    "end_user",
    "type",
    "name",
    "message_id",
    "user_id",
    "anonymous_id",
    "group_id",
    "previous_id",
    "properties",
    "context",
    "timestamp",
    "original_timestamp",
    "sent_at",
    "received_at",
)


def insert_events(rows: Sequence[tuple]) -> set[str]:
    """Insert rows (values in FIELDS order); return the message ids that were new."""
    returned = bulk.insert(
        Event,
        FIELDS,
        rows,
        on_conflict="(workspace_id, message_id) DO NOTHING",
        returning=("message_id",),
    )
    return {message_id for (message_id,) in returned}
