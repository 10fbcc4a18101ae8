"""Scrubbing an erased profile's events: in batches, one transaction each, resumable.

An erasure (guardrails.gdpr.erasure) tombstones the profile first; its events keep type, name and
times, lose properties and context, and their userId, anonymousId and previousId become the
tombstone. A long history runs as an RQ job; a job that died is finished by the next erasure
call in the workspace (`unfinished_profiles`). Nothing here reads an event's time into Python:
rows stored before ingestion bounded times (year 10000) could not be read, and must not stop an
erasure.
"""

import logging
from collections.abc import Callable

from django.db import transaction
from django.db.models import Case, Q, Subquery, Value, When

from onboarding.models import Event
from tenancy.models import TOMBSTONE_PREFIX, EndUser, Workspace

logger = logging.getLogger(__name__)

EVENT_BATCH_SIZE = 2000


def is_tombstone(value: str | None) -> bool:
    return bool(value) and value.startswith(TOMBSTONE_PREFIX)


def _tombstoned(column: str, tombstone: str) -> Case:
    return Case(When(**{column: ""}, then=Value("")), default=Value(tombstone))


def _unscrubbed() -> Q:
    identified = Q()
    for column in ("user_id", "anonymous_id", "previous_id"):
        identified |= Q(**{f"{column}__gt": ""}) & ~Q(**{f"{column}__startswith": TOMBSTONE_PREFIX})
    return ~Q(properties={}) | ~Q(context={}) | identified


def _scrub_events(event_ids: list[int], tombstone: str) -> int:
    with transaction.atomic():
        return Event.objects.filter(pk__in=event_ids).update(
            properties={},
            context={},
            user_id=_tombstoned("user_id", tombstone),
            anonymous_id=_tombstoned("anonymous_id", tombstone),
            previous_id=_tombstoned("previous_id", tombstone),
        )


def _next_event_ids(events, *, after: int | None, batch_size: int) -> list[int]:
    """The next batch's ids in (timestamp, id) order. The cursor's timestamp stays in the
    database (a subquery on the last id): an event time Python cannot read (a year 10000 stored
    before ingestion refused it) must not stop an erasure."""
    batch = events.order_by("timestamp", "pk")
    if after is not None:
        last = Subquery(Event.objects.filter(pk=after).values("timestamp"))
        batch = batch.filter(Q(timestamp__gt=last) | Q(timestamp=last, pk__gt=after))
    return list(batch.values_list("pk", flat=True)[:batch_size])


def erase_events(
    *,
    end_user: EndUser,
    batch_size: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Scrub an erased profile's events in batches, one transaction each; returns how many.

    Walks the (end user, timestamp) index in key order, so each batch costs the same however long
    the history; a last pass catches events stored while it ran. Safe to run again."""
    tombstone = end_user.external_id
    if not is_tombstone(tombstone):
        raise ValueError("erase_events runs on an erased profile only (its user id is a tombstone)")
    batch_size = batch_size or EVENT_BATCH_SIZE
    events = Event.objects.filter(workspace_id=end_user.workspace_id, end_user=end_user)
    total = events.count()
    done = 0
    after: int | None = None
    while True:
        event_ids = _next_event_ids(events, after=after, batch_size=batch_size)
        if not event_ids:
            break
        done += _scrub_events(event_ids, tombstone)
        after = event_ids[-1]
        if on_progress is not None:
            on_progress(done, max(total, done))
    late = list(events.filter(_unscrubbed()).values_list("pk", flat=True))
    if late:
        done += _scrub_events(late, tombstone)
        if on_progress is not None:
            on_progress(done, done)
    logger.info(
        "guardrails.gdpr.erasure.events_erased",
        extra={"workspace_id": end_user.workspace_id, "end_user_id": end_user.pk, "events": done},
    )
    return done


def unfinished_profiles(*, workspace: Workspace) -> list[EndUser]:
    """Erased profiles with events still to scrub (an erasure job that did not finish)."""
    pending = Event.objects.filter(
        workspace=workspace, end_user__external_id__startswith=TOMBSTONE_PREFIX
    ).filter(_unscrubbed())
    end_user_ids = set(pending.values_list("end_user_id", flat=True).distinct())
    return list(EndUser.objects.filter(workspace=workspace, pk__in=end_user_ids).order_by("pk"))
