"""What inactivity and re-engagement share: an unfinished enrollment whose user has sent no event
for N days ({"days": N}), nudged once per absence (the occasion is the day of the last event)."""

from datetime import datetime, timedelta
from typing import Any

from django.db.models import Exists, OuterRef, QuerySet, Subquery

from nudges.models import Nudge, Trigger
from nudges.triggers.firing import SCAN_BATCH, ScanReport, fire
from nudges.triggers.kinds.base import TriggerKind
from onboarding.models import Enrollment, Event


class Absence(TriggerKind):
    config_fields = ("days",)
    scans = True

    def __init__(self, *, kind: str, statuses: tuple[str, ...], label: str, default_days: int):
        self.kind = kind
        self.statuses = statuses  # the enrollment statuses it looks at
        self.label = label  # in the occasion: "inactive" or "away"
        self.default_days = default_days

    def config_errors(self, config: dict[str, Any]) -> dict[str, str]:
        days = config.get("days", self.default_days)
        if not isinstance(days, int) or not 1 <= days <= 365:
            return {"days": "a whole number of days from 1 to 365"}
        return {}

    def scan(self, triggers: list[Trigger], now: datetime, report: ScanReport) -> None:
        for trigger in triggers:
            self._scan_one(trigger, now, report)

    def _scan_one(self, trigger: Trigger, now: datetime, report: ScanReport) -> None:
        days = int(trigger.config.get("days", self.default_days))
        for enrollment in self._candidates(trigger, now - timedelta(days=days)).iterator(
            chunk_size=SCAN_BATCH
        ):
            last = enrollment.last_event_at
            fire(
                trigger,
                enrollment.end_user,
                f"enrollment:{enrollment.pk}:{self.label}-since:{last.date().isoformat()}",
                enrollment=enrollment,
                target_step_key=enrollment.current_step_key,
                reason=f"{trigger.kind}: no events for {(now - last).days} days "
                f"(last {last:%Y-%m-%d %H:%M} UTC; trigger after {days})",
                report=report,
            )

    def _candidates(self, trigger: Trigger, silent_since: datetime) -> QuerySet[Enrollment]:
        """Enrollments whose last event is older than `silent_since`, not nudged by this trigger
        for this absence yet (no nudge of it made after the last event)."""
        last_event = (
            Event.objects.filter(end_user_id=OuterRef("end_user_id"))
            .order_by("-timestamp")
            .values("timestamp")[:1]
        )
        nudged = Nudge.objects.filter(
            trigger=trigger, enrollment=OuterRef("pk"), created_at__gte=OuterRef("last_event_at")
        )
        return (
            Enrollment.objects.filter(workspace_id=trigger.workspace_id, status__in=self.statuses)
            .annotate(last_event_at=Subquery(last_event))
            .filter(last_event_at__lt=silent_since)
            .exclude(Exists(nudged))
            .select_related("end_user")
            .order_by("pk")
        )
