"""Ingestion rate limits per API key, counted in events (a batch of 100 is 100 events).

`admit()` costs one Redis round trip per request (guardrails.abuse.counters): it checks the
key's event and identify limits and counts what the abuse detector reads later, so detection adds
no work per event. Over a limit, ingestion answers 429 with `Retry-After` and a Segment-style body.

If Redis errors or times out, the request is admitted, the failure logged (no payload) and
counted: the seeds' rule for an unavailable abuse detector is "log and allow". After a failure,
Redis is not asked again for BREAKER_SECONDS, so an outage does not cost every request a timeout.
The count is exported to Prometheus and added to a cache key (in the same Lua call, once Redis
answers again) that the admin shows as "detector unavailable N times".
"""

import logging
import math
import threading
import time
from dataclasses import dataclass

import redis
from django.conf import settings
from django.core.cache import cache
from django.core.signals import setting_changed
from prometheus_client import Counter
from rest_framework import exceptions, status

from guardrails.abuse.counters import Limits, ProcessCounters, RedisCounters
from tenancy.models import ApiKey

logger = logging.getLogger(__name__)

BREAKER_SECONDS = 5.0
REFUSAL_LOG_INTERVAL_SECONDS = 10.0
UNAVAILABLE_CACHE_KEY = "guardrails:abuse:detector_unavailable"

DETECTOR_UNAVAILABLE = Counter(
    "guardrails_abuse_detector_unavailable_total",
    "Times the rate limiter or abuse detector could not reach its store and let the request through.",
    ["component"],
)


@dataclass(frozen=True, slots=True)
class Admission:
    allowed: bool
    retry_after: int = 0  # whole seconds, at least 1 when refused
    limit: str = ""  # "events" or "identifies" when refused


class RateLimited(exceptions.APIException):
    """429 with Retry-After: DRF's exception handler turns `wait` into the header."""

    status_code = status.HTTP_429_TOO_MANY_REQUESTS
    default_code = "rate_limited"

    def __init__(self, *, detail: str, wait: int):
        super().__init__(detail)
        self.wait = wait


# --- Where the counters live -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Configuration:
    store: RedisCounters | ProcessCounters
    limits: Limits
    unavailable_key: str  # the Django cache's name for UNAVAILABLE_CACHE_KEY, written by the Lua call


_stores: dict[str, RedisCounters | ProcessCounters] = {}
_stores_lock = threading.Lock()
_configuration: _Configuration | None = None
_state_lock = threading.Lock()
_breaker_open_until = 0.0
_pending_unavailable = 0
_refusals_logged: dict[int, float] = {}  # API key id -> when its last refusal was logged

# Read once per process, not per request (settings and cache lookups cost tens of microseconds);
# a settings override (tests) is picked up through Django's setting_changed.
_CONFIGURING_SETTINGS = {
    "REDIS_URL",
    "CACHES",
    "ABUSE_REDIS_TIMEOUT_SECONDS",
    "INGEST_RATE_LIMIT_EVENTS_PER_SECOND",
    "INGEST_RATE_LIMIT_EVENTS_BURST",
    "INGEST_RATE_LIMIT_IDENTIFIES_PER_SECOND",
    "INGEST_RATE_LIMIT_IDENTIFIES_BURST",
}


def _forget_configuration(*, setting: str, **kwargs) -> None:
    global _configuration
    if setting in _CONFIGURING_SETTINGS:
        _configuration = None


setting_changed.connect(_forget_configuration)


def _store_for(url: str) -> RedisCounters | ProcessCounters:
    """One store per URL and process (Redis clients are thread-safe)."""
    with _stores_lock:
        store = _stores.get(url)
        if store is None:
            store = (
                RedisCounters(url, timeout=settings.ABUSE_REDIS_TIMEOUT_SECONDS) if url else ProcessCounters()
            )
            _stores[url] = store
        return store


def _configured() -> _Configuration:
    global _configuration
    configuration = _configuration
    if configuration is None:
        configuration = _Configuration(
            store=_store_for(settings.REDIS_URL),
            limits=Limits(
                events_per_second=settings.INGEST_RATE_LIMIT_EVENTS_PER_SECOND,
                events_burst=settings.INGEST_RATE_LIMIT_EVENTS_BURST,
                identifies_per_second=settings.INGEST_RATE_LIMIT_IDENTIFIES_PER_SECOND,
                identifies_burst=settings.INGEST_RATE_LIMIT_IDENTIFIES_BURST,
            ),
            unavailable_key=cache.make_key(UNAVAILABLE_CACHE_KEY),
        )
        _configuration = configuration
    return configuration


def counters() -> RedisCounters | ProcessCounters:
    """Where the limits and counters live: Redis with REDIS_URL, else this process."""
    return _configured().store


def current_minute() -> int:
    return int(time.time() // 60)


def limits_for(api_key: ApiKey) -> Limits:
    """Today every key gets the settings; a per-workspace override would be read here."""
    return _configured().limits


# --- Detector unavailable: log, allow, count ---------------------------------------------------


def detector_unavailable(*, component: str, error: Exception | None = None) -> None:
    """Count one request let through because the store could not be asked."""
    global _pending_unavailable, _breaker_open_until
    DETECTOR_UNAVAILABLE.labels(component=component).inc()
    with _state_lock:
        _pending_unavailable += 1
        opening = error is not None and time.monotonic() >= _breaker_open_until
        if error is not None:
            _breaker_open_until = time.monotonic() + BREAKER_SECONDS
    if opening:
        # Once per outage window, not once per request: the counter has the volume.
        logger.warning(
            "guardrails.abuse.detection.detector_unavailable",
            extra={
                "component": component,
                "error": type(error).__name__,
                "retry_in_seconds": BREAKER_SECONDS,
            },
        )
    if not settings.REDIS_URL:
        _flush_pending_to_cache()


def _take_pending() -> int:
    global _pending_unavailable
    with _state_lock:
        pending, _pending_unavailable = _pending_unavailable, 0
    return pending


def _give_back_pending(count: int) -> None:
    global _pending_unavailable
    with _state_lock:
        _pending_unavailable += count


def _flush_pending_to_cache() -> None:
    pending = _take_pending()
    if not pending:
        return
    try:
        cache.add(UNAVAILABLE_CACHE_KEY, 0, None)
        cache.incr(UNAVAILABLE_CACHE_KEY, pending)
    except Exception:
        _give_back_pending(pending)


def detector_unavailable_count() -> int:
    """Times the detector was unavailable, across processes (plus this one's not yet flushed)."""
    try:
        stored = int(cache.get(UNAVAILABLE_CACHE_KEY) or 0)
    except Exception:
        stored = 0
    with _state_lock:
        return stored + _pending_unavailable


def breaker_open() -> bool:
    """Whether the store failed in the last BREAKER_SECONDS (then it is not asked)."""
    return time.monotonic() < _breaker_open_until


def reset_for_tests() -> None:
    global _breaker_open_until, _pending_unavailable
    with _state_lock:
        _breaker_open_until, _pending_unavailable = 0.0, 0
    _refusals_logged.clear()
    for store in _stores.values():
        if isinstance(store, ProcessCounters):
            store.clear()


# --- Admission ---------------------------------------------------------------------------------


def admit(*, api_key: ApiKey, events: int, identifies: int = 0) -> Admission:
    """May this key send `events` events (`identifies` of them identify calls) now?"""
    if breaker_open():
        detector_unavailable(component="ratelimit")
        return Admission(allowed=True)
    configuration = _configured()
    pending = (
        _take_pending() if _pending_unavailable and isinstance(configuration.store, RedisCounters) else 0
    )
    try:
        verdict = configuration.store.admit(
            api_key_id=api_key.pk,
            events=events,
            identifies=identifies,
            limits=limits_for(api_key),
            minute=current_minute(),
            unavailable_key=configuration.unavailable_key,
            unavailable_to_add=pending,
        )
    except redis.RedisError as error:
        _give_back_pending(pending)
        detector_unavailable(component="ratelimit", error=error)
        return Admission(allowed=True)
    if not verdict.limit:
        return Admission(allowed=True)
    retry_after = max(1, math.ceil(verdict.wait_ms / 1000))
    now = time.monotonic()
    if now - _refusals_logged.get(api_key.pk, -REFUSAL_LOG_INTERVAL_SECONDS) >= REFUSAL_LOG_INTERVAL_SECONDS:
        # A flood is refused thousands of times a minute: one line per key and interval says it,
        # and the per-minute counters (and the detector's rate_limited flag) have the volume.
        _refusals_logged[api_key.pk] = now
        logger.info(
            "guardrails.abuse.ratelimit.refused",
            extra={
                "workspace_id": api_key.workspace_id,
                "api_key_id": api_key.pk,
                "limit": verdict.limit,
                "events": events,
                "retry_after": retry_after,
            },
        )
    return Admission(allowed=False, retry_after=retry_after, limit=verdict.limit)


def invalid_events_record(*, api_key: ApiKey, count: int) -> None:
    """Count events rejected as invalid; rejected traffic is off the hot path, so a second call."""
    if count <= 0 or breaker_open():
        return
    try:
        counters().add(api_key_id=api_key.pk, minute=current_minute(), field="x", count=count)
    except redis.RedisError as error:
        detector_unavailable(component="invalid_payloads", error=error)


# --- The two hooks of the ingestion views (onboarding.ingestion.api._IngestApi) --------------------------


def _calls_in(data, call_type: str | None) -> tuple[int, int]:
    """(events, identifies) in a request body: one call, or a batch's list of calls."""
    if call_type:
        return 1, int(call_type == "identify")
    batch = data.get("batch") if isinstance(data, dict) else None
    if not isinstance(batch, list):
        return 1, 0  # refused as invalid by the view; still one request's worth
    identifies = sum(1 for call in batch if isinstance(call, dict) and call.get("type") == "identify")
    return len(batch), identifies


def ingest_admit(*, request, call_type: str | None) -> None:
    """Raise RateLimited (429, Retry-After) when the request's key is over its limit."""
    api_key = request.auth
    if not isinstance(api_key, ApiKey):
        return
    events, identifies = _calls_in(request.data, call_type)
    admission = admit(api_key=api_key, events=events, identifies=identifies)
    if admission.allowed:
        return
    limits = limits_for(api_key)
    rate = limits.events_per_second if admission.limit == "events" else limits.identifies_per_second
    noun = "events" if admission.limit == "events" else "identify calls"
    raise RateLimited(
        detail=(
            f"Rate limit reached: this API key may send {rate:g} {noun} per second. "
            f"Retry in {admission.retry_after} second(s); nothing from this request was stored."
        ),
        wait=admission.retry_after,
    )


def ingest_rejected_record(sender: object = None, *, request, response, **signal: object) -> None:
    """Count the events a 400/413 answer rejected: each listed one, or the whole request
    (receiver of onboarding.signals.ingestion_rejected)."""
    if response.status_code not in (status.HTTP_400_BAD_REQUEST, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE):
        return
    api_key = request.auth
    if not isinstance(api_key, ApiKey):
        return
    data = response.data if isinstance(response.data, dict) else {}
    rejected = data.get("rejected")
    count = len(rejected) if isinstance(rejected, list) else 1
    # The body lists the first rejections only (onboarding.ingestion.api); the count covers them all.
    invalid_events_record(api_key=api_key, count=data.get("rejected_count", count))
