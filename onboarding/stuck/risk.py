"""Risk providers: a higher layer (the ML layer's stuck detector) scoring how likely people are to
abandon the step they are on, so stuck detection can flag the high-risk ones earlier.

onboarding may not import ml: ml registers a provider from its AppConfig.ready(). The time-based
detection (rules.py) always runs; a provider only adds early flags: an enrollment past
EARLY_FRACTION of its step's limit (half) whose risk is at least RISK_THRESHOLD (0.7: abandoning
clearly more likely than not; everyone else still gets the full limit) is flagged at once, with the
provider's label in the reason. With no provider registered nothing more is read; a provider that
raises, or returns nothing, leaves the time-based result exactly as it was.
"""

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime

from onboarding.models import Enrollment
from onboarding.stuck import rules

logger = logging.getLogger(__name__)

EARLY_FRACTION = 0.5
RISK_THRESHOLD = 0.7
MAX_SCORED_PER_PASS = 2000
"""Enrollments scored per pass at most (those longest on their step first): each needs its features."""


@dataclass(frozen=True, slots=True)
class Risk:
    probability: float  # of abandoning the current step
    source: str  # who judged it: "stuck detector 1.2.0"


RiskProvider = Callable[..., dict[int, Risk]]
"""provider(*, workspace_id, enrollments, now) -> {enrollment id: Risk}; `enrollments` are active
Enrollment rows with their end_user loaded, on a step (current_step_key, step_entered_at)."""

_providers: list[RiskProvider] = []


def risk_provider_register(provider: RiskProvider) -> None:
    """Add a provider (registering the same one again is a no-op)."""
    if provider not in _providers:
        _providers.append(provider)


def risk_provider_unregister(provider: RiskProvider) -> None:
    if provider in _providers:
        _providers.remove(provider)


def providers_registered() -> bool:
    return bool(_providers)


def risks(*, workspace_id: int, enrollments: Sequence[Enrollment], now: datetime) -> dict[int, Risk]:
    """Every provider's risks, the first provider's answer winning; one that raises is logged and
    skipped."""
    found: dict[int, Risk] = {}
    if not enrollments:
        return found
    for provider in _providers:
        try:
            answer = provider(workspace_id=workspace_id, enrollments=enrollments, now=now)
        except Exception as error:
            logger.warning(
                "stuck.risk_provider_failed",
                extra={"workspace_id": workspace_id, "error": type(error).__name__},
                exc_info=True,
            )
            continue
        for enrollment_id, risk in (answer or {}).items():
            found.setdefault(enrollment_id, risk)
    return found


def is_high(risk: Risk | None) -> bool:
    return risk is not None and risk.probability >= RISK_THRESHOLD


def early_reason(*, step_key: str, risk: Risk, limit: rules.Limit) -> str:
    """ "stuck detector 1.0.0: 0.83 risk of abandoning 'connect'; flagged at half its limit (expected
    1 day)"."""
    share = "half" if EARLY_FRACTION == 0.5 else f"{EARLY_FRACTION:.0%} of"
    return (
        f"{risk.source}: {risk.probability:.2f} risk of abandoning '{step_key}'; "
        f"flagged at {share} its limit ({limit.describe()})"
    )
