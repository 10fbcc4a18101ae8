"""The daily nudge cap's counters: how many nudges a user was allowed on one day of their calendar.

Reservation is atomic, so 50 triggers for one user at the same moment are allowed at most the cap:
with REDIS_URL, a Lua script checks and increments one key (expiring when the user's day ends);
otherwise, or while Redis is unreachable, one UPDATE ... WHERE count < cap on a NudgeCapCounter
row, which PostgreSQL serialises by its row lock. Allowed nudge.send decisions (PolicyDecision)
are the record both counters start from: a counter missing for the day (first check of the day,
Redis flushed or just back) is seeded from them, so switching store never grants a second cap.
"""

import logging
import threading
import time
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import F

from guardrails.models import NudgeCapCounter, PolicyDecision
from guardrails.policy.localtime import LocalDay
from tenancy.models import EndUser

logger = logging.getLogger(__name__)

REDIS_STORE = "redis"
DATABASE_STORE = "database"
# After Redis fails, use the database for this long before trying Redis again.
REDIS_RETRY_AFTER_SECONDS = 30.0
EXPIRY_GRACE_SECONDS = 3600

# KEYS[1]: counter. ARGV: cap, expire-at (unix seconds), seed ('' when not yet known).
# Returns the new count, -1 when the cap is reached, -2 when the key needs a seed.
_RESERVE = """
local count = redis.call('GET', KEYS[1])
if not count then
  if ARGV[3] == '' then return -2 end
  redis.call('SET', KEYS[1], ARGV[3])
  count = ARGV[3]
end
if tonumber(count) >= tonumber(ARGV[1]) then
  redis.call('EXPIREAT', KEYS[1], ARGV[2])
  return -1
end
local reserved = redis.call('INCR', KEYS[1])
redis.call('EXPIREAT', KEYS[1], ARGV[2])
return reserved
"""
_RELEASE = """
local count = tonumber(redis.call('GET', KEYS[1]) or '0')
if count > 0 then return redis.call('DECR', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Reservation:
    """One nudge counted against a user's day, until released."""

    store: str
    end_user_id: int
    local_date_iso: str
    key: str
    count: int


_clients: dict[str, redis.Redis] = {}
_clients_lock = threading.Lock()
_redis_down_until = 0.0


def _redis() -> redis.Redis | None:
    url = settings.REDIS_URL
    if not url or time.monotonic() < _redis_down_until:
        return None
    with _clients_lock:
        if url not in _clients:
            # Short socket timeouts: a hanging Redis must cost a check a fraction of its budget.
            timeout = max(0.05, settings.POLICY_CHECK_TIMEOUT_SECONDS / 4)
            _clients[url] = redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout)
        return _clients[url]


def _redis_failed(error: Exception) -> None:
    global _redis_down_until
    _redis_down_until = time.monotonic() + REDIS_RETRY_AFTER_SECONDS
    logger.warning("guardrails.policy.caps.redis_unavailable", extra={"error_type": type(error).__name__})


def _key(end_user: EndUser, day: LocalDay) -> str:
    # The creation time with the id: a restored or re-created database never inherits a counter
    # of another person who had the same id.
    created = int(end_user.created_at.timestamp() * 1_000_000)
    return f"guardrails:nudgecap:{end_user.pk}:{created}:{day.date.isoformat()}"


def allowed_today(*, end_user: EndUser, day: LocalDay) -> int:
    """Nudges the policy allowed this user on this day, from the decisions on record."""
    return PolicyDecision.objects.filter(
        workspace_id=end_user.workspace_id,
        end_user=end_user,
        action=PolicyDecision.Action.NUDGE_SEND,
        allowed=True,
        decided_at__gte=day.starts_at,
        decided_at__lt=day.ends_at,
    ).count()


def cap_used(*, end_user: EndUser, day: LocalDay) -> int:
    """How much of the day's cap is used, without reserving anything."""
    client = _redis()
    if client is not None:
        try:
            value = client.get(_key(end_user, day))
        except redis.RedisError as error:
            _redis_failed(error)
        else:
            return int(value) if value is not None else allowed_today(end_user=end_user, day=day)
    value = (
        NudgeCapCounter.objects.filter(end_user=end_user, local_date=day.date)
        .values_list("count", flat=True)
        .first()
    )
    return value if value is not None else allowed_today(end_user=end_user, day=day)


def cap_reserve(*, end_user: EndUser, day: LocalDay, cap: int) -> Reservation | None:
    """Count one nudge against the user's day; None when the cap is already reached."""
    client = _redis()
    if client is not None:
        try:
            return _reserve_in_redis(client, end_user, day, cap)
        except redis.RedisError as error:
            _redis_failed(error)
    return _reserve_in_database(end_user, day, cap)


def _reserve_in_redis(client: redis.Redis, end_user: EndUser, day: LocalDay, cap: int) -> Reservation | None:
    key = _key(end_user, day)
    # Kept an hour past the end of the user's day; a check of a past day (a replay) keeps its
    # counter for an hour from now rather than expiring it at once.
    expire_at = int(max(day.ends_at.timestamp(), time.time())) + EXPIRY_GRACE_SECONDS
    script = client.register_script(_RESERVE)
    count = script(keys=[key], args=[cap, expire_at, ""])
    if count == -2:
        seed = allowed_today(end_user=end_user, day=day)
        count = script(keys=[key], args=[cap, expire_at, seed])
    if count < 0:
        return None
    return Reservation(REDIS_STORE, end_user.pk, day.date.isoformat(), key, count)


def _reserve_in_database(end_user: EndUser, day: LocalDay, cap: int) -> Reservation | None:
    counters = NudgeCapCounter.objects.filter(end_user=end_user, local_date=day.date)
    with transaction.atomic():
        if not counters.exists():
            seed = allowed_today(end_user=end_user, day=day)
            # Two first checks of the day may race here: ON CONFLICT DO NOTHING keeps one row.
            NudgeCapCounter.objects.bulk_create(
                [
                    NudgeCapCounter(
                        workspace_id=end_user.workspace_id, end_user=end_user, local_date=day.date, count=seed
                    )
                ],
                ignore_conflicts=True,
            )
        # The row lock makes concurrent reservations wait, then re-check count < cap.
        if not counters.filter(count__lt=cap).update(count=F("count") + 1):
            return None
        count = counters.values_list("count", flat=True).get()
    return Reservation(DATABASE_STORE, end_user.pk, day.date.isoformat(), "", count)


def cap_release(reservation: Reservation) -> None:
    """Give back a reserved nudge (the send was denied or did not happen)."""
    if reservation.store == REDIS_STORE:
        client = _redis()
        if client is not None:
            try:
                client.register_script(_RELEASE)(keys=[reservation.key])
                return
            except redis.RedisError as error:
                _redis_failed(error)
        logger.warning("guardrails.policy.caps.release_lost", extra={"end_user_id": reservation.end_user_id})
        return
    NudgeCapCounter.objects.filter(
        end_user_id=reservation.end_user_id, local_date=reservation.local_date_iso, count__gt=0
    ).update(count=F("count") - 1)
