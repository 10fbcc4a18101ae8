"""Inactivity: an active enrollment whose user sent nothing for N days (default 3)."""

from nudges.models import Trigger
from nudges.triggers.kinds.absence import Absence
from onboarding.models import Enrollment

KIND = Absence(
    kind=Trigger.Kind.INACTIVITY, statuses=(Enrollment.Status.ACTIVE,), label="inactive", default_days=3
)
