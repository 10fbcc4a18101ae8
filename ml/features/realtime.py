"""The feature store's Redis side: each person's behavioural counters, updated as events arrive.

Per (workspace, end user) two keys, both expiring ML_FEATURE_STORE_TTL_DAYS after the last write:

* a hash of counters: `n` events, `s` sessions, `ss` session microseconds, `f`/`l` first and last
  event (epoch microseconds), `st` steps completed on enrollment `se`, `c` when the counters are
  complete (written from PostgreSQL: a read-through or the daily job), `d` when they are dirty;
* a sorted set of the last RECENT_DAYS of events (member: a short hash of the message id, score:
  the event time), from which the read counts events_7d and active_days_7d exactly as
  ml/features/compute.behaviour_of does, and which makes an update idempotent: an event already
  in the set (written by the daily job or a read-through) is not counted twice.

The update applies compute.behaviour_of's session rule event by event: an event at least
SESSION_GAP after the last one opens a session, a closer one adds its gap to the session time.
A late event (before the stored last event) cannot be placed in its session without the events
around it: it is counted, may move the first event back, and marks the counters dirty, so the
next read recomputes that person from PostgreSQL and writes the result back (the daily job
repairs anyone else). Counters created by an update (no `c`) only know the events since their
creation: the first read completes them from PostgreSQL the same way, unless the person is newer
than the store itself.

The store's own birth, SINCE_KEY (epoch microseconds), is set once, by the first update or read
that finds it absent, in that call's round trip: every event ingested after it reached Redis (or
marked its person dirty). A person created after it has all their events in Redis, no key at all
meaning no event yet, so a new user's first path decision reads Redis instead of recomputing from
PostgreSQL. Redis keeps nothing on a restart: the key goes with the counters and is set anew.

A batch's events go to Redis as one script call, its people's keys and events in one string
argument: packing a Redis argument per key and value cost the server more than the rest of the
store. The script names keys it was not given as KEYS, which a single Redis (DESIGN's deployment)
allows; on Redis Cluster the call would have to be split per person (the keys carry a hash tag
per person for that).

Every call here may raise redis.RedisError; callers decide (ingestion logs and goes on, the read
falls back). Short socket timeouts, no retries: a Redis that is down costs a request little.
"""

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import redis
from django.conf import settings
from django.utils.timezone import now as timezone_now
from redis.backoff import NoBackoff
from redis.retry import Retry

from ml.features import compute

logger = logging.getLogger(__name__)

SINCE_KEY = "ml:features:since"
SINCE_MARGIN = timedelta(seconds=5)
"""A person counts as newer than the store only when created this long after it (clocks differ)."""
RECENT_DAYS = 8
RECENT_LIMIT = 5000  # events kept per person in the recent set (history.MAX_EVENTS_PER_PERSON)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# One call for a whole batch. ARGV: ttl seconds, session gap us, oldest recent us, recent limit,
# and the batch: a line per person, "<counters key> <recent key> <time us> <member> ...", events in
# time order. One string rather than a Redis argument per value: packing those was most of the
# server's cost per event. Times travel as strings and stay integers.
_UPDATE = """
local gap, oldest, limit = tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
for line in string.gmatch(ARGV[5], '[^\\n]+') do
  local fields = {}
  for token in string.gmatch(line, '%S+') do fields[#fields + 1] = token end
  local counters, recent = fields[1], fields[2]
  local stored = redis.call('HMGET', counters, 'l', 'f', 'n', 's', 'ss')
  local last, first = tonumber(stored[1] or ''), tonumber(stored[2] or '')
  local last_text, first_text, dirty = stored[1], stored[2], false
  local events, sessions, session_us = 0, 0, 0
  for index = 3, #fields, 2 do
    local moment = tonumber(fields[index])
    if redis.call('ZADD', recent, fields[index], fields[index + 1]) == 1 or moment < oldest then
      events = events + 1
      if first == nil or moment < first then
        first, first_text = moment, fields[index]
      end
      if last ~= nil and moment < last then
        dirty = true
      else
        if last == nil or moment - last >= gap then
          sessions = sessions + 1
        else
          session_us = session_us + (moment - last)
        end
        last, last_text = moment, fields[index]
      end
    end
  end
  if events > 0 then  -- one write of the person's new totals (the script runs alone: no race)
    redis.call('HSET', counters,
      'n', (tonumber(stored[3] or '') or 0) + events,
      's', (tonumber(stored[4] or '') or 0) + sessions,
      'ss', string.format('%.0f', (tonumber(stored[5] or '') or 0) + session_us),
      'f', first_text, 'l', last_text)
    if dirty then redis.call('HSET', counters, 'd', 1) end
  end
  redis.call('ZREMRANGEBYSCORE', recent, '-inf', '(' .. ARGV[3])
  redis.call('ZREMRANGEBYRANK', recent, 0, -1 - limit)
  redis.call('EXPIRE', counters, ARGV[1])
  redis.call('EXPIRE', recent, ARGV[1])
end
return 1
"""

# KEYS: counters. ARGV: ttl seconds, enrollment id, its steps completed. An older enrollment's
# news never overwrites a newer one's (the person's latest enrollment counts, as in history.py).
_STEPS = """
local current = tonumber(redis.call('HGET', KEYS[1], 'se') or '')
if current == nil or tonumber(ARGV[2]) >= current then
  redis.call('HSET', KEYS[1], 'se', ARGV[2], 'st', ARGV[3])
end
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""

# KEYS: counters. ARGV: ttl seconds. Updates were lost for this person (Redis was unreachable):
# the next read recomputes them.
_DIRTY = """
redis.call('HSET', KEYS[1], 'd', 1)
redis.call('EXPIRE', KEYS[1], ARGV[1])
return 1
"""

_SCRIPTS = {"update": _UPDATE, "steps": _STEPS, "dirty": _DIRTY}
_SHAS = {
    name: hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest()
    for name, source in _SCRIPTS.items()
}
_clients: dict[str, redis.Redis] = {}


def client() -> redis.Redis | None:
    """This process's client for settings.REDIS_URL (None on the embedded default)."""
    url = settings.REDIS_URL
    if not url:
        return None
    found = _clients.get(url)
    if found is None:
        timeout = settings.ML_FEATURE_STORE_TIMEOUT_SECONDS
        found = _clients[url] = redis.Redis.from_url(
            url,
            socket_timeout=timeout,
            socket_connect_timeout=timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
    return found


def counters_key(workspace_id: int, end_user_id: int) -> str:
    return f"ml:features:{{{workspace_id}:{end_user_id}}}"


def recent_key(workspace_id: int, end_user_id: int) -> str:
    return f"ml:features:{{{workspace_id}:{end_user_id}}}:recent"


def micros(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(microseconds=1)


def moment_of(value: int | float | bytes) -> datetime:
    return EPOCH + timedelta(microseconds=int(float(value)))


def member(message_id: str) -> str:
    """A short stand-in for a message id in the recent set (12 hex digits)."""
    return hashlib.blake2b(message_id.encode(), digest_size=6).hexdigest()


def _ttl() -> int:
    return int(settings.ML_FEATURE_STORE_TTL_DAYS * 86400)


@dataclass(frozen=True, slots=True)
class EventsUpdate:
    workspace_id: int
    end_user_id: int
    events: Sequence[tuple[int, str]]  # (time us, member), in time order


@dataclass(frozen=True, slots=True)
class StepsUpdate:
    workspace_id: int
    end_user_id: int
    enrollment_id: int
    steps_completed: int


def _execute(connection: redis.Redis, commands: list[tuple[str, tuple, tuple]], now: datetime) -> None:
    """Run the scripts in one non-transactional pipeline (one round trip), the store's birth set
    first if absent; only when Redis has lost the scripts (a restart) load them and run it again."""
    for attempt in range(2):
        pipeline = connection.pipeline(transaction=False)
        pipeline.set(SINCE_KEY, micros(now), nx=True)
        for name, keys, args in commands:
            pipeline.evalsha(_SHAS[name], len(keys), *keys, *args)
        results = pipeline.execute(raise_on_error=False)
        if attempt == 0 and any(isinstance(each, redis.exceptions.NoScriptError) for each in results):
            for source in _SCRIPTS.values():
                connection.script_load(source)
            continue
        errors = [each for each in results if isinstance(each, Exception)]
        if errors:
            raise errors[0]
        return


def apply(
    events: Iterable[EventsUpdate],
    steps: Iterable[StepsUpdate],
    now: datetime,
    dirty: Iterable[tuple[int, int]] = (),
) -> int:
    """Apply a batch's updates in one round trip, and mark `dirty` the (workspace id, end user id)
    whose earlier updates were lost; returns the number of scripts run."""
    connection = client()
    if connection is None:
        return 0
    ttl, oldest = _ttl(), micros(now - timedelta(days=RECENT_DAYS))
    gap = compute.SESSION_GAP // timedelta(microseconds=1)
    commands = []
    lines = [
        " ".join(
            [
                counters_key(update.workspace_id, update.end_user_id),
                recent_key(update.workspace_id, update.end_user_id),
                *(f"{moment} {name}" for moment, name in update.events),
            ]
        )
        for update in events
    ]
    if lines:  # one script for the batch: its cost is per call, not per person
        commands.append(("update", (), (ttl, gap, oldest, RECENT_LIMIT, "\n".join(lines))))
    for update in steps:
        keys = (counters_key(update.workspace_id, update.end_user_id),)
        commands.append(("steps", keys, (ttl, update.enrollment_id, update.steps_completed)))
    for workspace_id, end_user_id in dirty:
        commands.append(("dirty", (counters_key(workspace_id, end_user_id),), (ttl,)))
    if commands:
        _execute(connection, commands, now)
    return len(commands)


@dataclass(frozen=True, slots=True)
class Stored:
    """A person's counters as Redis holds them; `complete` false when they must be recomputed;
    `current` false when even a person newer than the store must be (dirty, or events ahead)."""

    behaviour: compute.Behaviour
    complete: bool
    current: bool = True


def _decode(fields: Mapping[bytes, bytes], recent: Sequence[tuple[bytes, float]], now: datetime) -> Stored:
    counters = {key.decode(): value for key, value in fields.items()}
    last = moment_of(counters["l"]) if "l" in counters else None
    behaviour = compute.Behaviour(
        event_count=int(counters.get("n", 0)),
        session_count=int(counters.get("s", 0)),
        session_seconds=int(counters.get("ss", 0)) / 1e6,
        first_event_at=moment_of(counters["f"]) if "f" in counters else None,
        last_event_at=last,
        steps_completed=int(counters.get("st", 0)),
    )
    moments = [moment_of(score) for _, score in recent]
    behaviour.events_7d = len(moments)
    behaviour.active_days_7d = len({moment.date() for moment in moments})
    # Events stamped after `now` (a client's clock ahead) are in the counters: PostgreSQL answers.
    current = "d" not in counters and (last is None or last <= now)
    return Stored(behaviour, "c" in counters and current, current)


def read(
    workspace_id: int, end_user_ids: Sequence[int], now: datetime
) -> tuple[datetime | None, dict[int, Stored]]:
    """The store's birth (None if it was born in this very call) and everyone's counters, in one
    round trip (HGETALL and the last 7 days of the recent set)."""
    connection = client()
    if connection is None:
        raise redis.exceptions.ConnectionError("no REDIS_URL: the feature store reads PostgreSQL")
    low, high = micros(now - timedelta(days=7)), micros(now)
    pipeline = connection.pipeline(transaction=False)
    pipeline.get(SINCE_KEY)
    pipeline.set(SINCE_KEY, micros(timezone_now()), nx=True)
    for end_user_id in end_user_ids:
        pipeline.hgetall(counters_key(workspace_id, end_user_id))
        pipeline.zrangebyscore(recent_key(workspace_id, end_user_id), low, high, withscores=True)
    since, _, *results = pipeline.execute()
    stored = {
        end_user_id: _decode(results[2 * index], results[2 * index + 1], now)
        for index, end_user_id in enumerate(end_user_ids)
    }
    return (moment_of(since) if since is not None else None), stored


@dataclass(frozen=True, slots=True)
class Complete:
    """A person's counters recomputed from PostgreSQL, with their recent events' (time us, member)."""

    behaviour: compute.Behaviour
    recent: Sequence[tuple[int, str]]
    enrollment_id: int = 0


def write(workspace_id: int, people: Mapping[int, Complete], computed_at: datetime) -> None:
    """Replace these people's keys with complete counters, atomically (MULTI/EXEC, one round trip)."""
    connection = client()
    if connection is None or not people:
        return
    ttl = _ttl()
    pipeline = connection.pipeline(transaction=True)
    for end_user_id, complete in people.items():
        behaviour = complete.behaviour
        counters = {
            "c": micros(computed_at),
            "n": behaviour.event_count,
            "s": behaviour.session_count,
            "ss": round(behaviour.session_seconds * 1e6),
            "st": behaviour.steps_completed,
            "se": complete.enrollment_id,
        }
        if behaviour.first_event_at is not None:
            counters["f"] = micros(behaviour.first_event_at)
            counters["l"] = micros(behaviour.last_event_at)
        keys = counters_key(workspace_id, end_user_id), recent_key(workspace_id, end_user_id)
        pipeline.delete(*keys)
        pipeline.hset(keys[0], mapping=counters)
        if complete.recent:
            pipeline.zadd(keys[1], {name: moment for moment, name in complete.recent})
            pipeline.expire(keys[1], ttl)
        pipeline.expire(keys[0], ttl)
    pipeline.execute()
