"""Triggers: when a user should get a nudge. Each kind decides its occasions; a nudge is created
once per (trigger, user, occasion) and sent through the pipeline.

Event-driven kinds run from onboarding's hooks (nudges.triggers.receivers -> nudges.jobs): welcome on a new
enrollment, milestone on completed steps, the "A" and "B" events of custom triggers. Time-based
kinds run from `scan` (`manage.py run_triggers`, and the scheduler every SCAN_INTERVAL):
stuck signals, inactivity, re-engagement and custom triggers whose window ran out.

Configuration (Trigger.config), validated by `config_errors`:
- milestone: {"step": "<step key>"} or {"percent": 50}
- inactivity: {"days": 3}; reengagement: {"days": 14}
- custom: {"event_a": "Cart Viewed", "conditions_a": [...], "event_b": "Order Completed",
  "window_hours": 24} (conditions as in paths' rules: property, operator, value)
"""

import logging
import threading
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Subquery
from django.utils import timezone

from core.jobs import enqueue
from nudges import services
from nudges.models import CustomTriggerStart, Nudge, Trigger
from onboarding.models import EndUser, Enrollment, EnrollmentSignal, Event, Workspace
from paths import rules
from paths.steps import condition_errors

logger = logging.getLogger(__name__)

Kind = Trigger.Kind
SCAN_BATCH = 500
DEFAULT_DAYS = {Kind.INACTIVITY: 3, Kind.REENGAGEMENT: 14}


@dataclass
class ScanReport:
    created: int = 0  # nudges created (and sent to the pipeline)
    duplicates: int = 0  # occasions that had their nudge already


# --- Configuration ---------------------------------------------------------------------------------


def config_errors(kind: str, config: dict[str, Any]) -> dict[str, str]:
    """Field -> what is wrong with a trigger's configuration (empty when valid)."""
    errors: dict[str, str] = {}
    if not isinstance(config, dict):
        return {"config": "must be an object"}
    if kind == Kind.MILESTONE:
        step, percent = config.get("step"), config.get("percent")
        if bool(step) == (percent is not None):
            errors["config"] = "give either a step key or a percent"
        elif percent is not None and (not isinstance(percent, int) or not 1 <= percent <= 100):
            errors["percent"] = "a whole number from 1 to 100"
    elif kind in (Kind.INACTIVITY, Kind.REENGAGEMENT):
        days = config.get("days", DEFAULT_DAYS[kind])
        if not isinstance(days, int) or not 1 <= days <= 365:
            errors["days"] = "a whole number of days from 1 to 365"
    elif kind == Kind.CUSTOM:
        for field in ("event_a", "event_b"):
            if not isinstance(config.get(field), str) or not config[field].strip():
                errors[field] = "an event name"
        hours = config.get("window_hours")
        if not isinstance(hours, int | float) or not 0 < hours <= 24 * 90:
            errors["window_hours"] = "a number of hours, more than 0 and at most 2160 (90 days)"
        conditions = config.get("conditions_a") or []
        if not isinstance(conditions, list):
            errors["conditions_a"] = "a list of conditions"
        else:
            problems = [
                f"condition {number}: {problem}"
                for number, condition in enumerate(conditions, start=1)
                for problem in condition_errors(condition)
            ]
            if problems:
                errors["conditions_a"] = "; ".join(problems)
    return errors


def _conditions(config: dict[str, Any]) -> tuple[rules.Condition, ...]:
    return tuple(
        rules.Condition(
            property=str(condition.get("property", "")),
            operator=str(condition.get("operator", "eq")),
            value=condition.get("value"),
        )
        for condition in config.get("conditions_a") or []
    )


def _days(trigger: Trigger) -> int:
    return int(trigger.config.get("days", DEFAULT_DAYS.get(trigger.kind, 3)))


# New nudges go to the pipeline in jobs of PIPELINE_BATCH: a scan that fires for thousands of
# users queues a few hundred jobs, not thousands (RQ's own work per job is about a third of a
# nudge's). Each nudge of a job is processed on its own: one failing does not stop the others.
PIPELINE_BATCH = 20
JOB_OPTIONS = {"result_ttl": 0}  # the outcome is on the nudge; nothing reads the job's result
_outbox = threading.local()


@contextmanager
def _dispatching():
    """Collect the nudges fired inside, and send them on in batches (at the latest on exit)."""
    if getattr(_outbox, "ids", None) is not None:
        yield  # nested: the outer block sends
        return
    _outbox.ids = []
    try:
        yield
    finally:
        ids, _outbox.ids = _outbox.ids, None
        _dispatch(ids)


def _outbox_add(nudge_id: int) -> None:
    ids = getattr(_outbox, "ids", None)
    if ids is None:
        _dispatch([nudge_id])
        return
    ids.append(nudge_id)
    if len(ids) >= PIPELINE_BATCH:
        _dispatch(ids[:])
        ids.clear()


def _dispatch(nudge_ids: list[int]) -> None:
    from nudges.jobs import nudges_process_job

    for start in range(0, len(nudge_ids), PIPELINE_BATCH):
        enqueue(nudges_process_job, nudge_ids[start : start + PIPELINE_BATCH], job_options=JOB_OPTIONS)


def _active(workspace_id: int, kinds: tuple[str, ...]) -> list[Trigger]:
    return list(
        Trigger.objects.filter(workspace_id=workspace_id, kind__in=kinds, is_active=True).order_by("pk")
    )


def _fire(
    trigger: Trigger,
    end_user: EndUser,
    occasion: str,
    *,
    enrollment: Enrollment | None,
    target_step_key: str,
    reason: str,
    report: ScanReport | None = None,
) -> Nudge | None:
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


# --- Event-driven ------------------------------------------------------------------------------------


def on_progress(*, enrollment_id: int, created: bool, step_keys: list[str]) -> list[Nudge]:
    """Welcome on a new enrollment; milestones for the steps just completed."""
    with _dispatching():
        return _on_progress(enrollment_id=enrollment_id, created=created, step_keys=step_keys)


def _on_progress(*, enrollment_id: int, created: bool, step_keys: list[str]) -> list[Nudge]:
    enrollment = (
        Enrollment.objects.select_related("end_user", "path_version__path").filter(pk=enrollment_id).first()
    )
    if enrollment is None:
        return []
    kinds = (Kind.WELCOME, Kind.MILESTONE) if created else (Kind.MILESTONE,)
    triggers = _active(enrollment.workspace_id, kinds)
    if not triggers:
        return []
    from onboarding.progress.enrollments import enrollment_state

    state = enrollment_state(enrollment=enrollment)
    end_user, fired = enrollment.end_user, []
    for trigger in triggers:
        if trigger.kind == Kind.WELCOME:
            reason = (
                f"welcome: enrolled on {state['path']['name']} ({enrollment.decision_reason or 'planner'})"
            )
            nudge = _fire(
                trigger,
                end_user,
                f"enrollment:{enrollment.pk}",
                enrollment=enrollment,
                target_step_key=state["current_step"] or "",
                reason=reason,
            )
        elif trigger.config.get("step"):
            step = trigger.config["step"]
            if step not in step_keys:
                continue
            nudge = _fire(
                trigger,
                end_user,
                f"enrollment:{enrollment.pk}:step:{step}",
                enrollment=enrollment,
                target_step_key=state["current_step"] or "",
                reason=f"milestone: step {step!r} completed",
            )
        else:
            percent = int(trigger.config.get("percent", 100))
            if state["percent_complete"] < percent or not step_keys:
                continue
            nudge = _fire(
                trigger,
                end_user,
                f"enrollment:{enrollment.pk}:percent:{percent}",
                enrollment=enrollment,
                target_step_key=state["current_step"] or "",
                reason=f"milestone: {state['percent_complete']}% of the path done (trigger at {percent}%)",
            )
        if nudge is not None:
            fired.append(nudge)
    return fired


def on_events(items: list[tuple[int, int, str, str, str]]) -> int:
    """Custom triggers: an "A" event starts a wait, a "B" event within the window ends it.
    items: (workspace id, end user id, event name, message id, timestamp). Returns starts made."""
    by_workspace: dict[int, list[tuple[int, str, str, datetime]]] = defaultdict(list)
    for workspace_id, end_user_id, name, message_id, at in items:
        by_workspace[workspace_id].append((end_user_id, name, message_id, datetime.fromisoformat(at)))
    started = 0
    for workspace_id, events in by_workspace.items():
        triggers = _active(workspace_id, (Kind.CUSTOM,))
        if not triggers:
            continue
        names = {trigger.config.get("event_a") for trigger in triggers}
        names |= {trigger.config.get("event_b") for trigger in triggers}
        stored = {
            row["message_id"]: row
            for row in Event.objects.filter(
                workspace_id=workspace_id, message_id__in=[event[2] for event in events if event[1] in names]
            ).values("id", "message_id", "end_user_id", "name", "timestamp", "properties")
        }
        for trigger in triggers:
            started += _custom_events(trigger, stored.values())
    return started


def _custom_events(trigger: Trigger, events) -> int:
    config = trigger.config
    conditions = _conditions(config)
    window = timedelta(hours=float(config["window_hours"]))
    started = 0
    for event in sorted(events, key=lambda row: (row["timestamp"], row["id"])):
        if event["name"] == config.get("event_b"):
            CustomTriggerStart.objects.filter(
                trigger=trigger,
                end_user_id=event["end_user_id"],
                completed_at__isnull=True,
                fired_at__isnull=True,
                started_at__lte=event["timestamp"],
                deadline__gte=event["timestamp"],
            ).update(completed_at=event["timestamp"])
        properties = event["properties"] or {}
        if event["name"] == config.get("event_a") and all(
            rules.condition_matches(condition, properties) for condition in conditions
        ):
            try:
                with transaction.atomic():
                    CustomTriggerStart.objects.create(
                        trigger=trigger,
                        end_user_id=event["end_user_id"],
                        event_id=event["id"],
                        started_at=event["timestamp"],
                        deadline=event["timestamp"] + window,
                    )
                started += 1
            except IntegrityError:
                pass  # this A event was seen already
    return started


# --- Time-based ----------------------------------------------------------------------------------------


def scan(*, workspace: Workspace, now: datetime | None = None) -> ScanReport:
    """One pass of the time-based triggers over a workspace. Idempotent."""
    with _dispatching():
        return _scan(workspace=workspace, now=now or timezone.now())


def _scan(*, workspace: Workspace, now: datetime) -> ScanReport:
    report = ScanReport()
    triggers = _active(workspace.pk, (Kind.STUCK, Kind.INACTIVITY, Kind.REENGAGEMENT, Kind.CUSTOM))
    stuck = [trigger for trigger in triggers if trigger.kind == Kind.STUCK]
    if stuck:
        _scan_stuck(stuck, now, report)
    for trigger in triggers:
        if trigger.kind in (Kind.INACTIVITY, Kind.REENGAGEMENT):
            _scan_idle(trigger, now, report)
        elif trigger.kind == Kind.CUSTOM:
            _scan_custom(trigger, now, report)
    return report


def _scan_stuck(triggers: list[Trigger], now: datetime, report: ScanReport) -> None:
    """Stuck signals not taken yet: every stuck trigger fires for each, then the signal is
    marked consumed (it stays open: the progress engine resolves it when the user moves on)."""
    while True:
        signals = list(
            EnrollmentSignal.objects.filter(
                enrollment__workspace_id=triggers[0].workspace_id,
                kind=EnrollmentSignal.Kind.STUCK,
                resolved_at__isnull=True,
                consumed_at__isnull=True,
                enrollment__status=Enrollment.Status.ACTIVE,
            )
            .select_related("enrollment__end_user")
            .order_by("pk")[:SCAN_BATCH]
        )
        if not signals:
            return
        for signal in signals:
            enrollment = signal.enrollment
            for trigger in triggers:
                _fire(
                    trigger,
                    enrollment.end_user,
                    f"signal:{signal.pk}",
                    enrollment=enrollment,
                    target_step_key=signal.step_key,
                    reason=f"stuck: {signal.reason}",
                    report=report,
                )
        EnrollmentSignal.objects.filter(pk__in=[signal.pk for signal in signals]).update(consumed_at=now)


def _scan_idle(trigger: Trigger, now: datetime, report: ScanReport) -> None:
    """Inactivity: an active enrollment whose user sent nothing for N days. Re-engagement: an
    unfinished one (active or abandoned) whose user has been away N days. Once per absence: the
    occasion is the day of the last event."""
    days = _days(trigger)
    statuses = (
        [Enrollment.Status.ACTIVE]
        if trigger.kind == Kind.INACTIVITY
        else [Enrollment.Status.ACTIVE, Enrollment.Status.ABANDONED]
    )
    last_event = (
        Event.objects.filter(end_user_id=OuterRef("end_user_id"))
        .order_by("-timestamp")
        .values("timestamp")[:1]
    )
    # Nudged for this absence already: a nudge of this trigger made after the last event.
    nudged = Nudge.objects.filter(
        trigger=trigger, enrollment=OuterRef("pk"), created_at__gte=OuterRef("last_event_at")
    )
    candidates = (
        Enrollment.objects.filter(workspace_id=trigger.workspace_id, status__in=statuses)
        .annotate(last_event_at=Subquery(last_event))
        .filter(last_event_at__lt=now - timedelta(days=days))
        .exclude(Exists(nudged))
        .select_related("end_user")
        .order_by("pk")
    )
    label = "inactive" if trigger.kind == Kind.INACTIVITY else "away"
    for enrollment in candidates.iterator(chunk_size=SCAN_BATCH):
        last = enrollment.last_event_at
        idle_days = (now - last).days
        _fire(
            trigger,
            enrollment.end_user,
            f"enrollment:{enrollment.pk}:{label}-since:{last.date().isoformat()}",
            enrollment=enrollment,
            target_step_key=enrollment.current_step_key,
            reason=f"{trigger.kind}: no events for {idle_days} days (last {last:%Y-%m-%d %H:%M} UTC; "
            f"trigger after {days})",
            report=report,
        )


def _scan_custom(trigger: Trigger, now: datetime, report: ScanReport) -> None:
    due = (
        CustomTriggerStart.objects.filter(
            trigger=trigger, deadline__lte=now, completed_at__isnull=True, fired_at__isnull=True
        )
        .select_related("end_user")
        .order_by("deadline", "pk")
    )
    config = trigger.config
    for start in due.iterator(chunk_size=SCAN_BATCH):
        enrollment = (
            Enrollment.objects.filter(end_user=start.end_user).order_by("-enrolled_at", "-pk").first()
        )
        _fire(
            trigger,
            start.end_user,
            f"start:{start.pk}",
            enrollment=enrollment,
            target_step_key=enrollment.current_step_key if enrollment else "",
            reason=(
                f"custom: {config['event_a']!r} at {start.started_at:%Y-%m-%d %H:%M} UTC without "
                f"{config['event_b']!r} within {config['window_hours']} h"
            ),
            report=report,
        )
        CustomTriggerStart.objects.filter(pk=start.pk).update(fired_at=now)


def scan_all(*, now: datetime | None = None) -> dict[str, int]:
    """`scan` over every workspace with an active time-based trigger."""
    totals = {"workspaces": 0, "created": 0, "duplicates": 0}
    workspace_ids = (
        Trigger.objects.filter(
            is_active=True, kind__in=(Kind.STUCK, Kind.INACTIVITY, Kind.REENGAGEMENT, Kind.CUSTOM)
        )
        .values_list("workspace_id", flat=True)
        .distinct()
    )
    for workspace in Workspace.objects.filter(pk__in=list(workspace_ids)).order_by("pk"):
        report = scan(workspace=workspace, now=now)
        totals["workspaces"] += 1
        totals["created"] += report.created
        totals["duplicates"] += report.duplicates
    return totals
