"""Triggers: when a user should get a nudge. The engine dispatches to the registered kinds
(nudges.triggers.registry, one module each under nudges/triggers/kinds/); a nudge is created once
per (trigger, user, occasion) and sent through the pipeline (nudges.triggers.firing).

Event-driven kinds run from onboarding's signals (nudges.triggers.receivers -> nudges.jobs):
welcome on a new enrollment, milestone on completed steps, the "A" and "B" events of custom
triggers. Time-based kinds run from `scan` (`manage.py run_triggers`, and the scheduler every
SCAN_INTERVAL): stuck signals, inactivity, re-engagement and custom triggers whose window ran out.
Each kind's configuration (Trigger.config) is validated by `config_errors`.
"""

from collections import defaultdict
from datetime import datetime
from typing import Any

from django.utils import timezone

from nudges.models import Nudge
from nudges.triggers import registry
from nudges.triggers.firing import ScanReport, dispatching
from nudges.triggers.kinds.base import Progress
from nudges.triggers.selectors import triggers_active, workspaces_with_active_triggers
from onboarding.models import Enrollment, Event
from onboarding.progress.selectors import enrollment_state
from tenancy.models import Workspace

__all__ = ["ScanReport", "config_errors", "on_events", "on_progress", "scan", "scan_all"]


def config_errors(kind: str, config: dict[str, Any]) -> dict[str, str]:
    """Field -> what is wrong with a trigger's configuration (empty when valid)."""
    if not isinstance(config, dict):
        return {"config": "must be an object"}
    return registry.kind_for(kind).config_errors(config)


# --- Event-driven ------------------------------------------------------------------------------------


def on_progress(*, enrollment_id: int, created: bool, step_keys: list[str]) -> list[Nudge]:
    """Welcome on a new enrollment; milestones for the steps just completed."""
    with dispatching():
        return _on_progress(enrollment_id=enrollment_id, created=created, step_keys=step_keys)


def _on_progress(*, enrollment_id: int, created: bool, step_keys: list[str]) -> list[Nudge]:
    enrollment = (
        Enrollment.objects.select_related("end_user", "path_version__path").filter(pk=enrollment_id).first()
    )
    if enrollment is None:
        return []
    kinds = registry.enrollment_kinds() if created else registry.step_kinds()
    triggers = triggers_active(workspace_id=enrollment.workspace_id, kinds=kinds)
    if not triggers:
        return []
    progress = Progress(
        enrollment=enrollment, state=enrollment_state(enrollment=enrollment), step_keys=step_keys
    )
    fired = (registry.kind_for(trigger.kind).on_progress(trigger, progress) for trigger in triggers)
    return [nudge for nudge in fired if nudge is not None]


def on_events(items: list[tuple[int, int, str, str, str]]) -> int:
    """Stored events for the kinds that react to them (custom: an "A" event starts a wait, a "B"
    event within the window ends it).
    items: (workspace id, end user id, event name, message id, timestamp). Returns waits started."""
    by_workspace: dict[int, list[tuple[str, str]]] = defaultdict(list)
    for workspace_id, _end_user_id, name, message_id, _at in items:
        by_workspace[workspace_id].append((name, message_id))
    started = 0
    for workspace_id, events in by_workspace.items():
        triggers = triggers_active(workspace_id=workspace_id, kinds=registry.event_kinds())
        if not triggers:
            continue
        names = set().union(
            *(registry.kind_for(trigger.kind).watched_events(trigger) for trigger in triggers)
        )
        stored = Event.objects.filter(
            workspace_id=workspace_id,
            message_id__in=[message_id for name, message_id in events if name in names],
        ).values("id", "message_id", "end_user_id", "name", "timestamp", "properties")
        rows = list({row["message_id"]: row for row in stored}.values())
        for trigger in triggers:
            started += registry.kind_for(trigger.kind).on_events(trigger, rows)
    return started


# --- Time-based ----------------------------------------------------------------------------------------


def scan(*, workspace: Workspace, now: datetime | None = None) -> ScanReport:
    """One pass of the time-based triggers over a workspace. Idempotent."""
    now = now or timezone.now()
    report = ScanReport()
    with dispatching():
        triggers = triggers_active(workspace_id=workspace.pk, kinds=registry.scanning_kinds())
        for kind in registry.scanning_kinds():
            of_kind = [trigger for trigger in triggers if trigger.kind == kind]
            if of_kind:
                registry.kind_for(kind).scan(of_kind, now, report)
    return report


def scan_all(*, now: datetime | None = None) -> dict[str, int]:
    """`scan` over every workspace with an active time-based trigger."""
    totals = {"workspaces": 0, "created": 0, "duplicates": 0}
    for workspace in workspaces_with_active_triggers(kinds=registry.scanning_kinds()):
        report = scan(workspace=workspace, now=now)
        totals["workspaces"] += 1
        totals["created"] += report.created
        totals["duplicates"] += report.duplicates
    return totals
