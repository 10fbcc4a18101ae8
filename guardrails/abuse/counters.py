"""Where ingestion's rate limits and per-minute counters live: Redis, or this process without it.

Per API key, two GCRA limits (generic cell rate algorithm: one stored number per limit, the
"theoretical arrival time"; a request of n events moves it n emission intervals on and is refused
when it would land more than the burst ahead of now) and one hash per minute with the counts the
abuse detector reads:

    e  events sent (refused ones included: a flood that is refused is still a flood)
    i  identify calls sent
    x  events rejected as invalid
    l  events refused by the rate limit

With Redis, one Lua script does the check, the counting and the "key active this minute" note in
one round trip, on Redis' clock so that every web process shares one limit. Without Redis (the
embedded default) the same algorithm runs in this process: limits and counters are per process,
and a `detect_abuse` run in another process sees none of them.
"""

import threading
import time
from collections import defaultdict
from dataclasses import dataclass

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

# Counters are kept long enough for a baseline hour plus the recent minutes and some slack.
COUNTER_RETENTION_SECONDS = 2 * 3600

FIELDS = ("e", "i", "x", "l")


@dataclass(frozen=True, slots=True)
class Limits:
    """Sustained rate and burst, per limit; a rate of 0 (or less) means no limit."""

    events_per_second: float
    events_burst: int
    identifies_per_second: float
    identifies_burst: int


@dataclass(frozen=True, slots=True)
class MinuteCounts:
    events: int = 0
    identifies: int = 0
    invalid: int = 0
    limited: int = 0


@dataclass(frozen=True, slots=True)
class Verdict:
    """`limit` is "" when admitted, else "events" or "identifies"; `wait_ms` until it would pass."""

    limit: str
    wait_ms: float


def minute_key(api_key_id: int, minute: int) -> str:
    return f"abuse:m:{api_key_id}:{minute}"


def active_key(minute: int) -> str:
    return f"abuse:active:{minute}"


def _counts(values) -> MinuteCounts:
    return MinuteCounts(*(int(value or 0) for value in values))


# KEYS: 1 events TAT, 2 identifies TAT, 3 this minute's hash, 4 this minute's active set,
#       5 the detector-unavailable counter (a Django cache key)
# ARGV: 1 events, 2 identifies, 3 events/s, 4 events burst, 5 identifies/s, 6 identifies burst,
#       7 counter TTL in seconds, 8 API key id, 9 unavailable count to add
_ADMIT_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + tonumber(clock[2]) / 1000
local events = tonumber(ARGV[1])
local identifies = tonumber(ARGV[2])

local function gcra(key, cost, rate, burst)
  if cost <= 0 or rate <= 0 then return nil, 0 end
  local interval = 1000 / rate
  if cost > burst then cost = burst end
  local tat = tonumber(redis.call('GET', key))
  if tat == nil or tat < now then tat = now end
  local next_tat = tat + cost * interval
  local wait = next_tat - burst * interval - now
  if wait > 0 then return nil, wait end
  return next_tat, 0
end

local event_tat, event_wait = gcra(KEYS[1], events, tonumber(ARGV[3]), tonumber(ARGV[4]))
local identify_tat, identify_wait = gcra(KEYS[2], identifies, tonumber(ARGV[5]), tonumber(ARGV[6]))
local refused = 0
if event_wait > 0 or identify_wait > 0 then
  if event_wait >= identify_wait then refused = 1 else refused = 2 end
  redis.call('HINCRBY', KEYS[3], 'l', events)
else
  if event_tat then
    redis.call('SET', KEYS[1], string.format('%.3f', event_tat), 'PX', math.ceil(event_tat - now) + 1)
  end
  if identify_tat then
    redis.call('SET', KEYS[2], string.format('%.3f', identify_tat), 'PX', math.ceil(identify_tat - now) + 1)
  end
end
redis.call('HINCRBY', KEYS[3], 'e', events)
if identifies > 0 then redis.call('HINCRBY', KEYS[3], 'i', identifies) end
redis.call('EXPIRE', KEYS[3], ARGV[7])
redis.call('SADD', KEYS[4], ARGV[8])
redis.call('EXPIRE', KEYS[4], ARGV[7])
if tonumber(ARGV[9]) > 0 then redis.call('INCRBY', KEYS[5], ARGV[9]) end
return {refused, math.ceil(math.max(event_wait, identify_wait))}
"""

_REFUSED = {0: "", 1: "events", 2: "identifies"}


class RedisCounters:
    """Limits and counters in Redis. Every method may raise redis.RedisError; callers decide."""

    def __init__(self, url: str, *, timeout: float):
        # No retries: a slow or absent Redis must cost a request one short timeout at most.
        self.client = redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0)
        )
        self._admit = self.client.register_script(_ADMIT_LUA)

    def admit(
        self,
        *,
        api_key_id: int,
        events: int,
        identifies: int,
        limits: Limits,
        minute: int,
        unavailable_key: str,
        unavailable_to_add: int,
    ) -> Verdict:
        refused, wait_ms = self._admit(
            keys=[
                f"abuse:tat:e:{api_key_id}",
                f"abuse:tat:i:{api_key_id}",
                minute_key(api_key_id, minute),
                active_key(minute),
                unavailable_key,
            ],
            args=[
                events,
                identifies,
                limits.events_per_second,
                limits.events_burst,
                limits.identifies_per_second,
                limits.identifies_burst,
                COUNTER_RETENTION_SECONDS,
                api_key_id,
                unavailable_to_add,
            ],
        )
        return Verdict(limit=_REFUSED[int(refused)], wait_ms=float(wait_ms))

    def add(self, *, api_key_id: int, minute: int, field: str, count: int) -> None:
        key = minute_key(api_key_id, minute)
        pipe = self.client.pipeline(transaction=False)
        pipe.hincrby(key, field, count)
        pipe.expire(key, COUNTER_RETENTION_SECONDS)
        pipe.sadd(active_key(minute), api_key_id)
        pipe.expire(active_key(minute), COUNTER_RETENTION_SECONDS)
        pipe.execute()

    def active_key_ids(self, *, minutes: list[int]) -> set[int]:
        members = self.client.sunion([active_key(minute) for minute in minutes]) if minutes else set()
        return {int(member) for member in members}

    def minute_counts(self, *, api_key_ids: list[int], minutes: list[int]) -> dict[int, list[MinuteCounts]]:
        """Each key's counts for each of `minutes`, in that order (zeros where nothing was sent)."""
        pipe = self.client.pipeline(transaction=False)
        for api_key_id in api_key_ids:
            for minute in minutes:
                pipe.hmget(minute_key(api_key_id, minute), FIELDS)
        rows = iter(pipe.execute())
        return {api_key_id: [_counts(next(rows)) for _ in minutes] for api_key_id in api_key_ids}


class ProcessCounters:
    """The same limits and counters in this process's memory, for the embedded default."""

    def __init__(self):
        self._lock = threading.Lock()
        self._tats: dict[tuple[str, int], float] = {}
        self._minutes: dict[tuple[int, int], list[int]] = defaultdict(lambda: [0, 0, 0, 0])
        self._active: dict[int, set[int]] = defaultdict(set)
        self._pruned_minute = 0

    @staticmethod
    def _next_tat(tat: float | None, *, now: float, cost: int, rate: float, burst: int):
        if cost <= 0 or rate <= 0:
            return None, 0.0
        interval = 1000 / rate
        start = now if tat is None or tat < now else tat
        next_tat = start + min(cost, burst) * interval
        wait = next_tat - burst * interval - now
        return (None, wait) if wait > 0 else (next_tat, 0.0)

    def _prune(self, minute: int) -> None:
        if minute == self._pruned_minute:
            return
        self._pruned_minute = minute
        oldest = minute - COUNTER_RETENTION_SECONDS // 60
        for key in [key for key in self._minutes if key[1] < oldest]:
            del self._minutes[key]
        for key in [key for key in self._active if key < oldest]:
            del self._active[key]
        now = time.monotonic() * 1000
        for key in [key for key, tat in self._tats.items() if tat < now]:
            del self._tats[key]

    def admit(
        self, *, api_key_id: int, events: int, identifies: int, limits: Limits, minute: int, **_
    ) -> Verdict:
        now = time.monotonic() * 1000
        with self._lock:
            self._prune(minute)
            event_tat, event_wait = self._next_tat(
                self._tats.get(("e", api_key_id)),
                now=now,
                cost=events,
                rate=limits.events_per_second,
                burst=limits.events_burst,
            )
            identify_tat, identify_wait = self._next_tat(
                self._tats.get(("i", api_key_id)),
                now=now,
                cost=identifies,
                rate=limits.identifies_per_second,
                burst=limits.identifies_burst,
            )
            counts = self._minutes[(api_key_id, minute)]
            counts[0] += events
            counts[1] += identifies
            self._active[minute].add(api_key_id)
            if event_wait > 0 or identify_wait > 0:
                counts[3] += events
                limit = "events" if event_wait >= identify_wait else "identifies"
                return Verdict(limit=limit, wait_ms=max(event_wait, identify_wait))
            if event_tat is not None:
                self._tats[("e", api_key_id)] = event_tat
            if identify_tat is not None:
                self._tats[("i", api_key_id)] = identify_tat
            return Verdict(limit="", wait_ms=0.0)

    def add(self, *, api_key_id: int, minute: int, field: str, count: int) -> None:
        with self._lock:
            self._minutes[(api_key_id, minute)][FIELDS.index(field)] += count
            self._active[minute].add(api_key_id)

    def active_key_ids(self, *, minutes: list[int]) -> set[int]:
        with self._lock:
            return set().union(*(self._active.get(minute, set()) for minute in minutes))

    def minute_counts(self, *, api_key_ids: list[int], minutes: list[int]) -> dict[int, list[MinuteCounts]]:
        with self._lock:
            return {
                api_key_id: [_counts(self._minutes.get((api_key_id, minute), ())) for minute in minutes]
                for api_key_id in api_key_ids
            }

    def clear(self) -> None:
        with self._lock:
            self._tats.clear()
            self._minutes.clear()
            self._active.clear()
