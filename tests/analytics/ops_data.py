"""Known data for the ops dashboard's tests (queries, pages, browser): events received at set
times, nudges in set states. Every expected number is in the docstrings, counted by hand."""

from datetime import UTC, date, datetime

from nudges.models import Nudge
from tenancy.models import EndUser, Workspace
from tests.factories import EndUserFactory, EventFactory
from tests.nudges.factories import NudgeFactory, TriggerFactory

NOW = datetime(2026, 3, 12, 10, 30, 20, tzinfo=UTC)
RANGE = (date(2026, 3, 10), date(2026, 3, 12))

# received_at of the workspace's events (one event each), with the other workspace's one.
RECEIVED = [
    datetime(2026, 3, 12, 10, 29, 5, tzinfo=UTC),
    datetime(2026, 3, 12, 10, 29, 6, tzinfo=UTC),
    datetime(2026, 3, 12, 10, 29, 7, tzinfo=UTC),
    datetime(2026, 3, 12, 10, 29, 59, tzinfo=UTC),
    datetime(2026, 3, 12, 10, 5, 0, tzinfo=UTC),
    datetime(2026, 3, 12, 10, 5, 30, tzinfo=UTC),
    datetime(2026, 3, 12, 9, 31, 0, tzinfo=UTC),
    datetime(2026, 3, 12, 9, 30, 59, tzinfo=UTC),  # before the last hour's first minute (09:31)
    datetime(2026, 3, 11, 11, 0, 0, tzinfo=UTC),  # the first hour of the last 24 (11:00 .. 10:59 next day)
    datetime(2026, 3, 11, 10, 59, 59, tzinfo=UTC),  # before it: in neither window
]
# Per minute over the last hour (09:31 .. 10:30): 10:29 -> 4, 10:05 -> 2, 09:31 -> 1, others 0.
PER_MINUTE = {"10:29": 4, "10:05": 2, "09:31": 1}
# Per hour over the last 24 (2026-03-11 11:00 .. 2026-03-12 10:00): 10:00 -> 6, 09:00 -> 2, 11:00 -> 1.
PER_HOUR = {(12, 10): 6, (12, 9): 2, (11, 11): 1}


def received_events(workspace: Workspace, other: Workspace) -> None:
    end_user = EndUserFactory(workspace=workspace)
    for moment in RECEIVED:
        EventFactory(end_user=end_user, received_at=moment, timestamp=moment)
    EventFactory(end_user=EndUserFactory(workspace=other), received_at=RECEIVED[0], timestamp=RECEIVED[0])


def _nudge(workspace: Workspace, end_user: EndUser, status: str, created: datetime, number: int) -> Nudge:
    trigger = TriggerFactory(workspace=workspace, name=f"Trigger {number}")
    nudge = NudgeFactory(trigger=trigger, end_user=end_user, status=status, occasion=f"ops-{number}")
    Nudge.objects.filter(pk=nudge.pk).update(created_at=created)
    return nudge


# (status, created day in March 2026) of the workspace's nudges.
NUDGES = [
    ("queued", 12),
    ("queued", 12),
    ("deferred", 11),
    ("in_flight", 12),
    ("in_doubt", 10),
    ("in_doubt", 1),  # before the range: counted in "in doubt" (any time) only
    ("sent", 10),
    ("converted", 11),
    ("failed", 11),
    ("failed", 12),
    ("failed", 2),  # before the range: a dead letter still
    ("suppressed", 10),
]
# Created in range (10..12): queued 2, deferred 1, in_flight 1, in_doubt 1, sent 1, converted 1,
# failed 2, suppressed 1; in the pipeline (queued, deferred, in flight, in doubt): 5.
# Whenever created: dead letters (failed) 3, in doubt 2. The other workspace: one failed (not counted).
IN_RANGE_BY_STATUS = {"queued": 2, "deferred": 1, "in_flight": 1, "in_doubt": 1, "sent": 1, "converted": 1}
IN_RANGE_BY_STATUS |= {"failed": 2, "suppressed": 1}
IN_PIPELINE, DEAD_LETTERS, IN_DOUBT = 5, 3, 2


def pipeline_nudges(workspace: Workspace, other: Workspace) -> None:
    end_user = EndUserFactory(workspace=workspace)
    for number, (status, day) in enumerate(NUDGES):
        _nudge(workspace, end_user, status, datetime(2026, 3, day, 9, tzinfo=UTC), number)
    _nudge(other, EndUserFactory(workspace=other), "failed", datetime(2026, 3, 11, 9, tzinfo=UTC), 99)
