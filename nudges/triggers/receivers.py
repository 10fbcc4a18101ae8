"""Where onboarding tells nudges what happened: a new enrollment, steps completed, events stored.

Receivers of onboarding.signals, connected in NudgesConfig.ready(). They run inside the writer's
transaction, so each defers its job until the commit: a transaction sends at most one job per
receiver, whatever number of enrollments or events it touched, so an ingestion batch of 100 events
costs one enqueue, not 100. Workspaces without any trigger skip it all (checked once per
process every CACHE_SECONDS).
"""

import time
from collections.abc import Callable
from datetime import datetime

from core.jobs import enqueue
from core.on_commit import on_commit_batched
from nudges.jobs import events_stored_job, progress_changed_job
from nudges.models import Trigger

CACHE_SECONDS = 10.0
_uses_nudges: dict[int, tuple[float, bool]] = {}


def workspace_uses_nudges(workspace_id: int) -> bool:
    """Whether the workspace has any trigger (active or not: sent nudges still convert)."""
    now = time.monotonic()
    cached = _uses_nudges.get(workspace_id)
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    found = Trigger.objects.filter(workspace_id=workspace_id).exists()
    _uses_nudges[workspace_id] = (now, found)
    return found


def forget() -> None:
    """Drop the per-process answers (tests, and the admin after creating a trigger)."""
    _uses_nudges.clear()


def _batched(name: str, job: Callable, item) -> None:
    """Add `item` to this transaction's batch for `job`, sent as one job after commit."""
    on_commit_batched(f"nudges.{name}", lambda items: enqueue(job, items, queue="default"), item)


def enrollment_started(sender: object, *, workspace_id: int, enrollment_id: int, **signal: object) -> None:
    """onboarding.signals.enrollment_started: the welcome triggers."""
    if workspace_uses_nudges(workspace_id):
        _batched("progress", progress_changed_job, (enrollment_id, True, [], None))


def steps_completed(
    sender: object,
    *,
    workspace_id: int,
    enrollment_id: int,
    step_keys: list[str],
    at: datetime,
    **signal: object,
) -> None:
    """onboarding.signals.steps_completed: steps that became complete in this write (milestones,
    conversions)."""
    if step_keys and workspace_uses_nudges(workspace_id):
        _batched("progress", progress_changed_job, (enrollment_id, False, step_keys, at.isoformat()))


def events_stored(sender: object, *, workspace_id: int, events: list[dict], **signal: object) -> None:
    """onboarding.signals.events_stored: named events just stored (custom "A without B" triggers
    read their names and times)."""
    if events and workspace_uses_nudges(workspace_id):
        for event in events:
            if event.get("name"):
                item = (
                    workspace_id,
                    event["end_user_id"],
                    event["name"],
                    event["message_id"],
                    event["timestamp"].isoformat(),
                )
                _batched("events", events_stored_job, item)
