"""Counters recomputed from PostgreSQL, the source of truth: the daily job's pass over everyone
recently active (FeatureSnapshot rows, and the Redis counters rewritten: whatever drifted in real
time is repaired), and the store's read-through for one person whose Redis counters are missing,
incomplete or dirty.

Both go through ml/features/history.behaviours_at, the function training's features come from.
"""

import logging
from collections import defaultdict
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

import redis
from django.db.models import Q

from ml.features import compute, history, realtime
from ml.models import FeatureSnapshot
from onboarding.models import Event
from tenancy.models import Workspace

logger = logging.getLogger(__name__)

ACTIVE_DAYS = 8
"""People with an event in this many days are recomputed daily (events_7d moves for them)."""
BATCH_SIZE = 500

SNAPSHOT_FIELDS = [
    "event_count",
    "session_count",
    "session_seconds",
    "first_event_at",
    "last_event_at",
    "steps_completed",
    "events_7d",
    "active_days_7d",
    "engagement_score",
    "computed_at",
]


def _recent_events(
    workspace_id: int, end_user_ids: Sequence[int], now: datetime
) -> dict[int, list[tuple[int, str]]]:
    """The recent set's members: each person's events of the last RECENT_DAYS up to `now`."""
    recent: dict[int, list[tuple[int, str]]] = defaultdict(list)
    rows = (
        Event.objects.filter(
            workspace_id=workspace_id,
            end_user_id__in=list(end_user_ids),
            timestamp__gte=now - timedelta(days=realtime.RECENT_DAYS),
            timestamp__lte=now,
        )
        .order_by()
        .values_list("end_user_id", "timestamp", "message_id")
    )
    for end_user_id, moment, message_id in rows.iterator(chunk_size=20000):
        recent[end_user_id].append((realtime.micros(moment), realtime.member(message_id)))
    for events in recent.values():
        if len(events) > realtime.RECENT_LIMIT:
            events.sort()
            del events[: -realtime.RECENT_LIMIT]
    return recent


def recompute(workspace_id: int, end_user_ids: Sequence[int], now: datetime) -> dict[int, realtime.Complete]:
    """These people's complete counters at `now`, from PostgreSQL (four queries)."""
    behaviours = history.behaviours_at(workspace_id, end_user_ids, now)
    recent = _recent_events(workspace_id, end_user_ids, now)
    return {
        end_user_id: realtime.Complete(behaviour, recent.get(end_user_id, ()))
        for end_user_id, behaviour in behaviours.items()
    }


def _snapshot(workspace_id: int, end_user_id: int, behaviour: compute.Behaviour, now: datetime):
    return FeatureSnapshot(
        workspace_id=workspace_id,
        end_user_id=end_user_id,
        event_count=behaviour.event_count,
        session_count=behaviour.session_count,
        session_seconds=behaviour.session_seconds,
        first_event_at=behaviour.first_event_at,
        last_event_at=behaviour.last_event_at,
        steps_completed=behaviour.steps_completed,
        events_7d=behaviour.events_7d,
        active_days_7d=behaviour.active_days_7d,
        engagement_score=compute.engagement_score(
            events_7d=behaviour.events_7d,
            active_days_7d=behaviour.active_days_7d,
            session_count=behaviour.session_count,
            steps_completed=behaviour.steps_completed,
        ),
        computed_at=now,
    )


def people_to_derive(*, workspace_id: int, now: datetime) -> list[int]:
    """Who the daily pass recomputes: anyone with an event in the last ACTIVE_DAYS, and anyone
    whose snapshot, older than a day, still counts recent activity (it decays to zero)."""
    active = Event.objects.filter(
        workspace_id=workspace_id, timestamp__gte=now - timedelta(days=ACTIVE_DAYS), timestamp__lte=now
    ).values_list("end_user_id", flat=True)
    stale = FeatureSnapshot.objects.filter(
        Q(events_7d__gt=0) | Q(active_days_7d__gt=0),
        workspace_id=workspace_id,
        computed_at__lt=now - timedelta(days=1),
    ).values_list("end_user_id", flat=True)
    return sorted(set(active.order_by().distinct()) | set(stale))


def derive_features(
    *,
    workspace_id: int,
    now: datetime,
    on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Recompute the people_to_derive in batches: upsert their snapshots, rewrite their Redis
    counters (a Redis error is logged: the snapshots still count). Returns how many."""
    people = people_to_derive(workspace_id=workspace_id, now=now)
    redis_ok = True
    for start in range(0, len(people), BATCH_SIZE):
        batch = people[start : start + BATCH_SIZE]
        complete = recompute(workspace_id, batch, now)
        FeatureSnapshot.objects.bulk_create(
            [_snapshot(workspace_id, person, each.behaviour, now) for person, each in complete.items()],
            update_conflicts=True,
            unique_fields=["end_user"],
            update_fields=SNAPSHOT_FIELDS,
        )
        if redis_ok:
            try:
                realtime.write(workspace_id, complete, now)
            except redis.RedisError as error:
                redis_ok = False
                logger.warning(
                    "ml.features.derive_redis_failed",
                    extra={"workspace_id": workspace_id, "error": str(error)},
                )
        if on_progress is not None:
            on_progress(start + len(batch), len(people))
    return len(people)


def derive_all(*, now: datetime, on_progress: Callable[[int, int], None] | None = None) -> dict[int, int]:
    """derive_features for every workspace; progress counts workspaces."""
    workspace_ids = list(Workspace.objects.order_by("pk").values_list("pk", flat=True))
    done = {}
    for index, workspace_id in enumerate(workspace_ids, start=1):
        done[workspace_id] = derive_features(workspace_id=workspace_id, now=now)
        if on_progress is not None:
            on_progress(index, len(workspace_ids))
    return done
