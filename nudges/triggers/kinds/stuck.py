"""Stuck: a nudge for each stuck signal onboarding's stuck detection raised and no trigger has
taken yet. Every stuck trigger of the workspace fires for the signal, then the signal is marked
consumed (it stays open: the progress engine resolves it when the user moves on)."""

from datetime import datetime

from nudges.models import Trigger
from nudges.triggers.firing import SCAN_BATCH, ScanReport, fire
from nudges.triggers.kinds.base import TriggerKind
from onboarding.models import Enrollment, EnrollmentSignal


class Stuck(TriggerKind):
    kind = Trigger.Kind.STUCK
    scans = True

    def scan(self, triggers: list[Trigger], now: datetime, report: ScanReport) -> None:
        while signals := _untaken_signals(triggers[0].workspace_id):
            for signal in signals:
                enrollment = signal.enrollment
                for trigger in triggers:
                    fire(
                        trigger,
                        enrollment.end_user,
                        f"signal:{signal.pk}",
                        enrollment=enrollment,
                        target_step_key=signal.step_key,
                        reason=f"stuck: {signal.reason}",
                        report=report,
                    )
            EnrollmentSignal.objects.filter(pk__in=[signal.pk for signal in signals]).update(consumed_at=now)


def _untaken_signals(workspace_id: int) -> list[EnrollmentSignal]:
    """The next batch of open, unconsumed stuck signals on active enrollments."""
    return list(
        EnrollmentSignal.objects.filter(
            enrollment__workspace_id=workspace_id,
            kind=EnrollmentSignal.Kind.STUCK,
            resolved_at__isnull=True,
            consumed_at__isnull=True,
            enrollment__status=Enrollment.Status.ACTIVE,
        )
        .select_related("enrollment__end_user")
        .order_by("pk")[:SCAN_BATCH]
    )


KIND = Stuck()
