"""Re-engagement: an unfinished enrollment (active or abandoned) whose user has been away N days
(default 14)."""

from nudges.models import Trigger
from nudges.triggers.kinds.absence import Absence
from onboarding.models import Enrollment

KIND = Absence(
    kind=Trigger.Kind.REENGAGEMENT,
    statuses=(Enrollment.Status.ACTIVE, Enrollment.Status.ABANDONED),
    label="away",
    default_days=14,
)
