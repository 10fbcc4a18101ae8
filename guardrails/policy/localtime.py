"""Calendar days and quiet-hour windows in an end user's own time zone (zoneinfo, so DST is exact).

Pure functions: they take the instant and the zone and never read the clock or the database.
"""

import functools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

FALLBACK_ZONE_NAME = "UTC"


@functools.lru_cache(maxsize=512)
def zone_named(name: str | None) -> ZoneInfo:
    """The IANA zone of this name; UTC when the name is empty or not a known zone."""
    if name:
        try:
            return ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            pass
    return ZoneInfo(FALLBACK_ZONE_NAME)


def is_known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


@dataclass(frozen=True)
class LocalDay:
    """One calendar day in a zone: its date and the instants it starts and ends at (UTC)."""

    date: date
    starts_at: datetime
    ends_at: datetime


def _at_local(day: date, wall_time: time, zone: ZoneInfo) -> datetime:
    """The first instant (UTC) at which the zone's clock reads this date and time or later.

    A repeated time (the autumn change) is its first occurrence; a skipped one (02:30 on a
    spring change day) is the jump itself, 03:00, when the clock first reads later than it.
    """
    wall = datetime.combine(day, wall_time)
    instant = wall.replace(tzinfo=zone).astimezone(UTC)
    if instant.astimezone(zone).replace(tzinfo=None) == wall:
        return instant
    # In a gap, fold=1 reads the wall time with the offset after the jump: an instant before it.
    earlier, later = wall.replace(tzinfo=zone, fold=1).astimezone(UTC), instant
    while later - earlier > timedelta(microseconds=1):
        middle = earlier + (later - earlier) / 2
        if middle.astimezone(zone).replace(tzinfo=None) >= wall:
            later = middle
        else:
            earlier = middle
    return later


def local_day(now: datetime, zone: ZoneInfo) -> LocalDay:
    today = now.astimezone(zone).date()
    return LocalDay(
        date=today,
        starts_at=_at_local(today, time(0), zone),
        ends_at=_at_local(today + timedelta(days=1), time(0), zone),
    )


def in_window(wall_time: time, start: time, end: time) -> bool:
    """Whether a wall-clock time falls in [start, end); a window with start > end wraps midnight."""
    if start == end:
        return False
    if start < end:
        return start <= wall_time < end
    return wall_time >= start or wall_time < end


def window_ends_at(now: datetime, zone: ZoneInfo, start: time, end: time) -> datetime | None:
    """When the quiet window `now` falls in ends (UTC); None when `now` is outside it."""
    local_now = now.astimezone(zone)
    wall_time = local_now.time().replace(tzinfo=None)
    if not in_window(wall_time, start, end):
        return None
    end_day = local_now.date()
    if start > end and wall_time >= start:
        end_day += timedelta(days=1)
    return _at_local(end_day, end, zone)


def format_wall_time(value: time) -> str:
    return value.strftime("%H:%M")
