"""The feature store's read: an end user's raw features now, and where they came from.

Profiles come from the EndUser rows, behaviour from the real-time Redis counters
(ml/features/realtime.py: one round trip for everyone asked about), and both are combined by
ml/features/compute.features_of, the function training's features go through too
(ml/features/history.py), so serving and training cannot disagree.

Per person, the best source that answers:

* "redis": complete counters in Redis, or those of a person newer than the store itself
  (ml/features/realtime.SINCE_KEY: all their events reached Redis; no key means no event yet);
* "postgres": counters recomputed from PostgreSQL, the source of truth: when Redis holds none or
  incomplete ones for an older person, dirty ones (a late event; written back then), or when
  Redis is unavailable and the cache has nothing recent enough; always on the embedded default
  (no REDIS_URL) or with the real-time updates switched off;
* "cache": Redis unavailable, the counters this process last read for the person, no older than
  ML_FEATURE_CACHE_SECONDS (time-dependent features are recomputed at `now`).

A read's `source` is its worst row's (redis, then postgres, then cache: stale), `sources` each
row's.
"""

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import redis
from cachetools import TTLCache
from django.conf import settings
from django.utils import timezone

from ml.features import compute, derived, history, realtime
from tenancy.models import EndUser

logger = logging.getLogger(__name__)

REDIS = "redis"
CACHE = "cache"
POSTGRES = "postgres"
_RANK = {REDIS: 0, POSTGRES: 1, CACHE: 2}


@dataclass(frozen=True, slots=True)
class FeatureRead:
    rows: dict[int, dict]  # end user id -> raw user features (ml/features/schema.USER_FEATURES)
    source: str  # "redis", "cache" or "postgres": the worst row's
    age_seconds: float = 0.0  # how old the oldest cached features were (source "cache")
    sources: dict[int, str] = field(default_factory=dict)  # end user id -> its row's source

    def describe(self) -> str:
        if self.source == CACHE:
            text = f"features from the cache, {self.age_seconds:.0f} s old (Redis unavailable)"
        else:
            text = f"features from {self.source}"
        counts = Counter(self.sources.values())
        if len(counts) > 1:
            text += (
                " ("
                + ", ".join(f"{counts[name]} from {name}" for name in sorted(counts, key=_RANK.get))
                + ")"
            )
        return text


_cache: TTLCache = TTLCache(
    maxsize=100_000, ttl=settings.ML_FEATURE_CACHE_SECONDS, timer=lambda: timezone.now().timestamp()
)
"""(workspace id, end user id) -> (read at, Behaviour): what the last successful read found."""


def forget() -> None:
    """Empty this process's cache (tests)."""
    _cache.clear()


def _read(
    workspace_id: int, end_users: Sequence[EndUser], behaviours: dict, sources: dict, now
) -> FeatureRead:
    for end_user in end_users:
        if sources[end_user.pk] != CACHE:
            _cache[(workspace_id, end_user.pk)] = (now, behaviours[end_user.pk])
    rows = {
        each.pk: compute.features_of(history.profile_of(each), behaviours[each.pk], now) for each in end_users
    }
    source = max(sources.values(), key=_RANK.get, default=REDIS)
    return FeatureRead(rows, source, sources=sources)


def _from_postgres(workspace_id: int, end_users: Sequence[EndUser], now: datetime) -> FeatureRead:
    behaviours = history.behaviours_at(workspace_id, [each.pk for each in end_users], now)
    return _read(workspace_id, end_users, behaviours, dict.fromkeys(behaviours, POSTGRES), now)


def _redis_down(workspace_id: int, end_users: Sequence[EndUser], now: datetime) -> FeatureRead:
    """Redis unavailable: the cache where recent enough, else PostgreSQL, person by person."""
    behaviours, sources, oldest = {}, {}, 0.0
    for end_user in end_users:
        cached = _cache.get((workspace_id, end_user.pk))
        age = (now - cached[0]).total_seconds() if cached else None
        if age is not None and 0 <= age <= settings.ML_FEATURE_CACHE_SECONDS:
            behaviours[end_user.pk], sources[end_user.pk] = cached[1], CACHE
            oldest = max(oldest, age)
    missing = [each.pk for each in end_users if each.pk not in behaviours]
    if missing:
        behaviours.update(history.behaviours_at(workspace_id, missing, now))
        sources.update(dict.fromkeys(missing, POSTGRES))
    read = _read(workspace_id, end_users, behaviours, sources, now)
    return FeatureRead(read.rows, read.source, oldest if read.source == CACHE else 0.0, sources)


def features_for(*, workspace_id: int, end_users: Sequence[EndUser], now: datetime) -> FeatureRead:
    """Raw features of these people at `now` (see the module's docstring for the sources)."""
    if not end_users:
        return FeatureRead({}, REDIS)
    if not settings.REDIS_URL or not settings.ML_FEATURE_STORE_REALTIME:
        return _from_postgres(workspace_id, end_users, now)
    try:
        since, stored = realtime.read(workspace_id, [each.pk for each in end_users], now)
    except redis.RedisError as error:
        logger.warning(
            "ml.features.redis_unavailable", extra={"workspace_id": workspace_id, "error": str(error)}
        )
        return _redis_down(workspace_id, end_users, now)
    newer = since + realtime.SINCE_MARGIN if since is not None else None
    behaviours = {
        each.pk: stored[each.pk].behaviour
        for each in end_users
        if stored[each.pk].complete
        or (newer is not None and stored[each.pk].current and each.created_at >= newer)
    }
    sources = dict.fromkeys(behaviours, REDIS)
    missing = [each.pk for each in end_users if each.pk not in behaviours]
    if missing:
        complete = derived.recompute(workspace_id, missing, now)
        behaviours.update({pk: each.behaviour for pk, each in complete.items()})
        sources.update(dict.fromkeys(missing, POSTGRES))
        _write_back(workspace_id, complete, stored, now)
    return _read(workspace_id, end_users, behaviours, sources, now)


def _write_back(workspace_id: int, complete: dict, stored: dict, now: datetime) -> None:
    """Complete the Redis counters just recomputed, except those holding events after `now` (a
    write as of `now` would drop them); a Redis error only costs the next read another recompute."""
    if now < timezone.now() - timedelta(minutes=1):
        return  # a read of the past: its counters are not today's
    writable = {
        pk: each
        for pk, each in complete.items()
        if stored[pk].behaviour.last_event_at is None or stored[pk].behaviour.last_event_at <= now
    }
    try:
        realtime.write(workspace_id, writable, now)
    except redis.RedisError as error:
        logger.warning(
            "ml.features.write_back_failed", extra={"workspace_id": workspace_id, "error": str(error)}
        )
