"""The times an event may carry: 2000-01-01 to 2100-01-01 UTC, with offsets of at most ±14:00.

Why bounds at all: a client may send `9999-12-31T23:59:59-14:00`. Python parses it, PostgreSQL
stores it as year 10000 in UTC, and then no Python process can read that row back (datetime
stops at year 9999): the person's export, erasure and progress rebuild all fail. The same goes
for `0001-01-01T00:00:00+14:00` (1 BC in UTC). So every time a client sends (timestamp,
originalTimestamp, sentAt, and the batch-level sentAt) is checked when it arrives, and refused
with its field named, rather than clamped: a clamped time would be a time the client never
sent, stored as if it had, and the client would never learn that its clock or its code is wrong.
Segment's own clock-skew rule (timestamp = receivedAt - (sentAt - timestamp)) still applies
to the times that pass, and its result must fall inside the window too.

Why these bounds: nothing onboarded by this platform happened before 2000, and a century ahead
leaves room for any device clock that is merely wrong. Offsets: the widest in use are UTC+14
(Line Islands) and UTC-12; PostgreSQL refuses anything beyond ±15:59 with an error.

Rows stored before these checks are repaired by onboarding.ingestion.time_repair.
"""

from datetime import UTC, datetime, timedelta

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
"""Exclusive: the last time accepted is 2099-12-31T23:59:59.999999Z."""
MAX_OFFSET = timedelta(hours=14)

OUT_OF_RANGE = "must be between 2000-01-01 and 2100-01-01 (UTC)"


def within(moment: datetime) -> bool:
    """An aware time inside the window (compared in UTC whatever its offset)."""
    return EARLIEST <= moment < LATEST


def checked(moment: datetime) -> datetime:
    """The time in UTC, or ValueError saying what is wrong with it (pydantic reports the field).

    A time without an offset is UTC, as Segment's libraries mean it."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    offset = moment.utcoffset()
    if abs(offset) > MAX_OFFSET:
        sign = "-" if offset < timedelta(0) else "+"
        hours, minutes = divmod(int(abs(offset).total_seconds()) // 60, 60)
        raise ValueError(
            f"time-zone offset {sign}{hours:02d}:{minutes:02d} is beyond ±14:00, the widest in use"
        )
    # Compared before converting: year 10000 in UTC cannot be converted, only compared.
    if not within(moment):
        raise ValueError(OUT_OF_RANGE)
    return moment.astimezone(UTC)
