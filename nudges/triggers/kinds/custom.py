"""Custom, "A without B within T": an "A" event (matching its conditions) starts a wait, a "B"
event within the window ends it, and the periodic scan fires for each wait that ran out.

Configuration: {"event_a": "Cart Viewed", "conditions_a": [...], "event_b": "Order Completed",
"window_hours": 24}, conditions as in paths' rules (property, operator, value).
"""

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction

from nudges.models import CustomTriggerStart, Trigger
from nudges.triggers.firing import SCAN_BATCH, ScanReport, fire
from nudges.triggers.kinds.base import TriggerKind
from onboarding.models import Enrollment
from paths import rules
from paths.steps import condition_errors


class Custom(TriggerKind):
    kind = Trigger.Kind.CUSTOM
    config_fields = ("event_a", "conditions_a", "event_b", "window_hours")
    fires_on_events = True
    scans = True

    def config_errors(self, config: dict[str, Any]) -> dict[str, str]:
        errors: dict[str, str] = {}
        for field in ("event_a", "event_b"):
            if not isinstance(config.get(field), str) or not config[field].strip():
                errors[field] = "an event name"
        hours = config.get("window_hours")
        if not isinstance(hours, int | float) or not 0 < hours <= 24 * 90:
            errors["window_hours"] = "a number of hours, more than 0 and at most 2160 (90 days)"
        conditions = config.get("conditions_a") or []
        if not isinstance(conditions, list):
            errors["conditions_a"] = "a list of conditions"
        elif problems := _condition_problems(conditions):
            errors["conditions_a"] = "; ".join(problems)
        return errors

    def watched_events(self, trigger: Trigger) -> set[str]:
        return {trigger.config.get("event_a"), trigger.config.get("event_b")}

    def on_events(self, trigger: Trigger, events: Iterable[dict[str, Any]]) -> int:
        config = trigger.config
        conditions = _conditions(config)
        window = timedelta(hours=float(config["window_hours"]))
        started = 0
        for event in sorted(events, key=lambda row: (row["timestamp"], row["id"])):
            if event["name"] == config.get("event_b"):
                _end_waits(trigger, event)
            properties = event["properties"] or {}
            if event["name"] == config.get("event_a") and all(
                rules.condition_matches(condition, properties) for condition in conditions
            ):
                started += _start_wait(trigger, event, window)
        return started

    def scan(self, triggers: list[Trigger], now: datetime, report: ScanReport) -> None:
        for trigger in triggers:
            _fire_due(trigger, now, report)


def _condition_problems(conditions: list[Any]) -> list[str]:
    return [
        f"condition {number}: {problem}"
        for number, condition in enumerate(conditions, start=1)
        for problem in condition_errors(condition)
    ]


def _conditions(config: dict[str, Any]) -> tuple[rules.Condition, ...]:
    return tuple(
        rules.Condition(
            property=str(condition.get("property", "")),
            operator=str(condition.get("operator", "eq")),
            value=condition.get("value"),
        )
        for condition in config.get("conditions_a") or []
    )


def _end_waits(trigger: Trigger, event: dict[str, Any]) -> None:
    """A "B" event ends the user's waits it falls within."""
    CustomTriggerStart.objects.filter(
        trigger=trigger,
        end_user_id=event["end_user_id"],
        completed_at__isnull=True,
        fired_at__isnull=True,
        started_at__lte=event["timestamp"],
        deadline__gte=event["timestamp"],
    ).update(completed_at=event["timestamp"])


def _start_wait(trigger: Trigger, event: dict[str, Any], window: timedelta) -> int:
    """An "A" event starts a wait (1), unless it was seen already (0)."""
    try:
        with transaction.atomic():
            CustomTriggerStart.objects.create(
                trigger=trigger,
                end_user_id=event["end_user_id"],
                event_id=event["id"],
                started_at=event["timestamp"],
                deadline=event["timestamp"] + window,
            )
    except IntegrityError:
        return 0
    return 1


def _fire_due(trigger: Trigger, now: datetime, report: ScanReport) -> None:
    """Waits whose window ran out without the "B" event: the nudge, on the user's latest enrollment."""
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
        fire(
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


KIND = Custom()
