"""Send time: now, or later today at the hour the user is most active, outside quiet hours.

The most active hour is the most common hour of the day, in the user's time zone, of their
events over the last LOOKBACK_DAYS (at least MIN_EVENTS of them, else there is no pattern to
follow). A nudge is held only when that hour is still ahead today; otherwise it goes now.

A higher layer may replace the heuristic: a registered send-time provider (the ML layer's response
predictor, when a model is active) answers first; one that answers None (no model) or raises
leaves the heuristic standing, and a failure is named in the reason. Quiet hours are not judged
here: the policy check defers a nudge that comes due inside them, whoever chose the time.
"""

import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from onboarding.models import Event
from tenancy.models import EndUser

logger = logging.getLogger(__name__)

LOOKBACK_DAYS = 30
MIN_EVENTS = 5

SendTime = tuple[datetime | None, str]
SendTimeProvider = Callable[..., SendTime | None]
"""provider(*, end_user, zone, now, channel) -> (when, why), when None meaning now; or None to
leave the choice to the next provider, then the heuristic. `channel` is "" when the caller has
not chosen one."""

_providers: list[SendTimeProvider] = []


def send_time_provider_register(provider: SendTimeProvider) -> None:
    """Add a provider (registering the same one again is a no-op)."""
    if provider not in _providers:
        _providers.append(provider)


def send_time_provider_unregister(provider: SendTimeProvider) -> None:
    if provider in _providers:
        _providers.remove(provider)


def most_active_hour(*, end_user: EndUser, zone: ZoneInfo, now: datetime) -> int | None:
    since = now - timedelta(days=LOOKBACK_DAYS)
    moments = Event.objects.filter(
        workspace_id=end_user.workspace_id, end_user=end_user, timestamp__gte=since
    ).values_list("timestamp", flat=True)[:2000]
    hours = Counter(moment.astimezone(zone).hour for moment in moments)
    if sum(hours.values()) < MIN_EVENTS:
        return None
    return min(hours, key=lambda hour: (-hours[hour], hour))


def send_at(
    *, end_user: EndUser, zone: ZoneInfo, now: datetime, channel: str = ""
) -> tuple[datetime | None, str]:
    """(when to send, why); None means now. A provider's answer first, else the most active hour."""
    failed = ""
    for provider in _providers:
        try:
            chosen = provider(end_user=end_user, zone=zone, now=now, channel=channel)
        except Exception as error:
            logger.warning(
                "nudges.send_time_provider_failed",
                extra={"workspace_id": end_user.workspace_id, "error": type(error).__name__},
                exc_info=True,
            )
            failed = f" (the send-time model failed: {type(error).__name__})"
            continue
        if chosen is not None:
            return chosen
    when, why = most_active_hour_send_at(end_user=end_user, zone=zone, now=now)
    return when, why + failed


def most_active_hour_send_at(
    *, end_user: EndUser, zone: ZoneInfo, now: datetime
) -> tuple[datetime | None, str]:
    """The heuristic: later today at the most active hour, else now."""
    hour = most_active_hour(end_user=end_user, zone=zone, now=now)
    if hour is None:
        return None, "send time: now (too few recent events to know the user's active hour)"
    local_now = now.astimezone(zone)
    if hour <= local_now.hour:
        return (
            None,
            f"send time: now (the user's most active hour, {hour:02d}:00 {zone.key}, has passed today)",
        )
    target = local_now.replace(hour=hour, minute=0, second=0, microsecond=0)
    return target, f"send time: {hour:02d}:00 {zone.key}, the user's most active hour"
