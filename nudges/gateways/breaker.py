"""The circuit breaker of each ChannelProvider, kept on its row so every worker shares it.

Closed: sends go through. Three consecutive ProviderUnavailable failures open it for a
cool-down (NUDGE_PROVIDER_COOLDOWN_SECONDS, default 300): nudges go to the backup provider.
When the cool-down is over it is half-open: one attempt is let through (the worker that claims
it holds the breaker open meanwhile); a success closes it, a failure opens it again. Rate limits
and rejected messages say nothing about the provider being down and never count.

Concurrent workers count correctly because every change is one UPDATE computed by the
database (F(), a CASE on the row's current values, a compare-and-set for the half-open trial).
"""

import logging
from datetime import datetime, timedelta
from enum import StrEnum

from django.conf import settings
from django.db.models import Case, DateTimeField, F, Q, Value, When
from django.db.models.functions import Least

from nudges.models import ChannelProvider

logger = logging.getLogger(__name__)

THRESHOLD = 3
DEFAULT_COOLDOWN_SECONDS = 300
# Keeps the counter inside a small integer however long a provider stays down.
MAX_COUNTED_FAILURES = 10_000


class State(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


def cooldown() -> timedelta:
    return timedelta(
        seconds=float(getattr(settings, "NUDGE_PROVIDER_COOLDOWN_SECONDS", DEFAULT_COOLDOWN_SECONDS))
    )


def breaker_state(provider: ChannelProvider, *, now: datetime) -> State:
    if provider.open_until is None:
        return State.CLOSED
    return State.OPEN if now < provider.open_until else State.HALF_OPEN


def breaker_allows(*, provider: ChannelProvider, now: datetime) -> bool:
    """Whether this worker may send through the provider now. Closed: yes. Open: no. Half-open:
    only the one worker whose compare-and-set on `open_until` wins; it pushes the cool-down on
    while it tries, so the others keep using the backup."""
    state = breaker_state(provider, now=now)
    if state != State.HALF_OPEN:
        return state == State.CLOSED
    until = now + cooldown()
    claimed = ChannelProvider.objects.filter(pk=provider.pk, open_until=provider.open_until).update(
        open_until=until
    )
    if claimed:
        provider.open_until = until
        logger.info(
            "nudge.provider.breaker_half_open",
            extra={"provider_id": provider.pk, "workspace_id": provider.workspace_id},
        )
    return bool(claimed)


def breaker_record_failure(*, provider: ChannelProvider, reason: str, now: datetime) -> bool:
    """Count a ProviderUnavailable; returns whether the breaker is open now (go to the backup)."""
    until = now + cooldown()
    reached = Q(consecutive_failures__gte=THRESHOLD - 1)
    not_open = Q(open_until__isnull=True) | Q(open_until__lte=now)
    ChannelProvider.objects.filter(pk=provider.pk).update(
        consecutive_failures=Least(F("consecutive_failures") + 1, Value(MAX_COUNTED_FAILURES)),
        last_error=reason[:300],
        open_until=Case(
            When(reached & not_open, then=Value(until, output_field=DateTimeField())),
            default=F("open_until"),
            output_field=DateTimeField(),
        ),
    )
    was_open = breaker_state(provider, now=now) == State.OPEN
    row = ChannelProvider.objects.filter(pk=provider.pk).values("consecutive_failures", "open_until").first()
    if row is not None:
        provider.consecutive_failures, provider.open_until = row["consecutive_failures"], row["open_until"]
    provider.last_error = reason[:300]
    is_open = provider.consecutive_failures >= THRESHOLD and breaker_state(provider, now=now) == State.OPEN
    if is_open and not was_open:
        logger.warning(
            "nudge.provider.breaker_opened",
            extra={
                "provider_id": provider.pk,
                "workspace_id": provider.workspace_id,
                "provider": provider.provider,
                "failures": provider.consecutive_failures,
                "open_until": provider.open_until.isoformat() if provider.open_until else None,
            },
        )
    return is_open


def breaker_record_success(*, provider: ChannelProvider) -> None:
    """Close the breaker. The row was read for this send: when it showed no failure there is
    nothing to write, which keeps the hot path to no extra query."""
    if provider.consecutive_failures == 0 and provider.open_until is None:
        return
    closed = (
        ChannelProvider.objects.filter(pk=provider.pk)
        .filter(Q(consecutive_failures__gt=0) | Q(open_until__isnull=False))
        .update(consecutive_failures=0, open_until=None, last_error="")
    )
    if closed and provider.open_until is not None:
        logger.info(
            "nudge.provider.breaker_closed",
            extra={"provider_id": provider.pk, "workspace_id": provider.workspace_id},
        )
    provider.consecutive_failures, provider.open_until, provider.last_error = 0, None, ""
