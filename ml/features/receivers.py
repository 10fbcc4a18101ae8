"""Where ingestion feeds the real-time feature store: receivers of onboarding.signals.events_stored
and steps_completed, connected in MlConfig.ready().

They run inside the writer's transaction and only collect; after the commit one flush sends the
whole transaction's updates to Redis in one round trip (ml/features/realtime.apply), so a batch of
100 events for 30 people costs one pipeline, and nothing is sent for a rollback. Ingestion
completes steps in a savepoint (onboarding/progress/engine.py) before it stores the events'
signal: the savepoint's collection, once released, joins its enclosing transaction's, so the
steps travel in the same round trip as the events.

A failure here never reaches ingestion: it is logged, the people whose updates were lost are
marked dirty by this process's next flush that reaches Redis (their next read recomputes them from
PostgreSQL, the source of truth), and the daily job (ml/features/derived.py) repairs the rest.
"""

import logging
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import Count, Q
from django.utils import timezone

from ml.features import realtime
from onboarding.models import Enrollment

logger = logging.getLogger(__name__)

_ATTRIBUTE = "_ml_feature_updates"


def enabled() -> bool:
    return bool(settings.REDIS_URL) and settings.ML_FEATURE_STORE_REALTIME


@dataclass(eq=False)
class _Collected:
    """One transaction level's updates, flushed by its on_commit callback."""

    depth: tuple
    events: list = field(default_factory=list)  # (workspace_id, end_user_id, timestamp, message_id)
    enrollments: list = field(default_factory=list)  # (workspace_id, enrollment_id)
    merged: bool = False
    callback: object = None  # its bound `run`, as registered with on_commit

    def run(self) -> None:
        if not self.merged:
            flush(self)


def _collected() -> _Collected | None:
    """This transaction level's collection (None outside a transaction). Collections of released
    savepoints below this level (still pending, their block closed) are merged into it."""
    connection = transaction.get_connection()
    if not connection.in_atomic_block:
        return None
    depth = tuple(connection.savepoint_ids)
    # A collection whose savepoint rolled back lost its callback with it (Django drops it).
    pending_callbacks = {id(entry[1]) for entry in connection.run_on_commit}
    alive = [
        each
        for each in connection.__dict__.get(_ATTRIBUTE, [])
        if not each.merged and id(each.callback) in pending_callbacks
    ]
    current = next((each for each in alive if each.depth == depth), None)
    if current is None:
        current = _Collected(depth)
        current.callback = current.run
        transaction.on_commit(current.callback)
        alive.append(current)
    for each in alive:
        if each is not current and len(each.depth) > len(depth) and each.depth[: len(depth)] == depth:
            current.events.extend(each.events)
            current.enrollments.extend(each.enrollments)
            each.merged = True
    connection.__dict__[_ATTRIBUTE] = [each for each in alive if not each.merged]
    return current


def events_stored(sender: object, *, workspace_id: int, events: list[dict], **signal: object) -> None:
    """onboarding.signals.events_stored: count the new events."""
    if not events or not enabled():
        return
    items = [
        (workspace_id, event["end_user_id"], event["timestamp"], event["message_id"]) for event in events
    ]
    collected = _collected()
    if collected is None:
        flush(_Collected((), events=items))
    else:
        collected.events.extend(items)


def steps_completed(
    sender: object,
    *,
    workspace_id: int,
    enrollment_id: int,
    step_keys: list[str],
    at: datetime,
    **signal: object,
) -> None:
    """onboarding.signals.steps_completed: the enrollment's steps are counted again after commit."""
    if not enabled():
        return
    collected = _collected()
    if collected is None:
        flush(_Collected((), enrollments=[(workspace_id, enrollment_id)]))
    else:
        collected.enrollments.append((workspace_id, enrollment_id))


def _steps_updates(enrollments: list[tuple[int, int]]) -> list[realtime.StepsUpdate]:
    """The enrollments' steps completed now (not reverted), with their end user: one query."""
    rows = (
        Enrollment.objects.filter(pk__in={enrollment_id for _, enrollment_id in enrollments})
        .annotate(done=Count("completions", filter=Q(completions__reverted_at__isnull=True)))
        .values_list("workspace_id", "end_user_id", "pk", "done")
    )
    return [realtime.StepsUpdate(*row) for row in rows]


UNSENT_LIMIT = 10_000
BREAKER_SECONDS = 5.0
_unsent: set[tuple[int, int]] = set()
_down_until: dict[str, float] = {}


def forget() -> None:
    """Drop this process's memory of lost updates and of Redis being down (tests)."""
    _unsent.clear()
    _down_until.clear()


def _lost(collected: _Collected) -> None:
    """Remember whose updates were lost, to mark them dirty at the next flush that gets through
    (bounded; beyond it, and if the process ends first, the daily job repairs them)."""
    for workspace_id, end_user_id, _, _ in collected.events:
        if len(_unsent) >= UNSENT_LIMIT:
            break
        _unsent.add((workspace_id, end_user_id))


def flush(collected: _Collected) -> None:
    """After commit: one pipeline for the transaction's events (grouped per person, in time order),
    steps, and the people whose earlier updates were lost. Logs and returns on any error; after a
    connection error, Redis is not tried again for BREAKER_SECONDS (a batch does not wait for its
    timeout each time)."""
    url = settings.REDIS_URL
    if time.monotonic() < _down_until.get(url, 0.0):
        _lost(collected)
        return
    try:
        by_person: dict[tuple[int, int], list[tuple[int, str]]] = defaultdict(list)
        for workspace_id, end_user_id, moment, message_id in collected.events:
            by_person[(workspace_id, end_user_id)].append(
                (realtime.micros(moment), realtime.member(message_id))
            )
        events = [
            realtime.EventsUpdate(workspace_id, end_user_id, sorted(moments))
            for (workspace_id, end_user_id), moments in by_person.items()
        ]
        steps = _steps_updates(collected.enrollments) if collected.enrollments else []
        dirty = list(_unsent)
        realtime.apply(events, steps, timezone.now(), dirty)
        _unsent.difference_update(dirty)
    except Exception as error:  # Redis or anything else: ingestion must not fail
        _lost(collected)
        if isinstance(error, redis.ConnectionError | redis.TimeoutError):
            _down_until[url] = time.monotonic() + BREAKER_SECONDS
        logger.warning(
            "ml.features.realtime_update_failed",
            extra={
                "events": len(collected.events),
                "enrollments": len(collected.enrollments),
                "error": repr(error),
            },
        )
