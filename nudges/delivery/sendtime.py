"""Send time: now, or later today at the hour the user is most active, outside quiet hours.

The most active hour is the most common hour of the day, in the user's time zone, of their
events over the last LOOKBACK_DAYS (at least MIN_EVENTS of them, else there is no pattern to
follow). A nudge is held only when that hour is still ahead today; otherwise it goes now.
"""

from collections import Counter
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from onboarding.models import Event
from tenancy.models import EndUser

LOOKBACK_DAYS = 30
MIN_EVENTS = 5


def most_active_hour(*, end_user: EndUser, zone: ZoneInfo, now: datetime) -> int | None:
    since = now - timedelta(days=LOOKBACK_DAYS)
    moments = Event.objects.filter(
        workspace_id=end_user.workspace_id, end_user=end_user, timestamp__gte=since
    ).values_list("timestamp", flat=True)[:2000]
    hours = Counter(moment.astimezone(zone).hour for moment in moments)
    if sum(hours.values()) < MIN_EVENTS:
        return None
    return min(hours, key=lambda hour: (-hours[hour], hour))


def send_at(*, end_user: EndUser, zone: ZoneInfo, now: datetime) -> tuple[datetime | None, str]:
    """(when to send, why); None means now."""
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
