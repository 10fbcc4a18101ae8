"""Ingestion rate limits per API key: 429 with Retry-After, counted in events, and fail-open."""

import logging

import pytest
import redis
from django.core.cache import cache

from guardrails.abuse import ratelimit
from guardrails.abuse.counters import RedisCounters
from onboarding.models import Event
from tests.guardrails.conftest import clear_abuse_counters

pytestmark = pytest.mark.django_db


def track(number: int) -> dict:
    return {"type": "track", "event": "Project Created", "userId": "ada", "messageId": f"m-{number}"}


def identify(number: int, user_id: str = "ada") -> dict:
    return {"type": "identify", "userId": user_id, "traits": {"plan": "pro"}, "messageId": f"i-{number}"}


def batch(calls: list[dict]) -> dict:
    return {"batch": calls}


@pytest.fixture(autouse=True)
def _fresh_limiter():
    ratelimit.reset_for_tests()
    cache.delete(ratelimit.UNAVAILABLE_CACHE_KEY)
    yield
    ratelimit.reset_for_tests()


@pytest.fixture
def small_limit(settings):
    settings.INGEST_RATE_LIMIT_EVENTS_PER_SECOND = 1
    settings.INGEST_RATE_LIMIT_EVENTS_BURST = 10
    settings.INGEST_RATE_LIMIT_IDENTIFIES_PER_SECOND = 1
    settings.INGEST_RATE_LIMIT_IDENTIFIES_BURST = 3


def unavailable_total(component: str) -> float:
    return ratelimit.DETECTOR_UNAVAILABLE.labels(component=component)._value.get()


# --- Limits ------------------------------------------------------------------------------------


def test_a_key_over_its_limit_gets_429_with_retry_after_and_nothing_is_stored(limiter, small_limit, segment):
    assert segment("batch", batch([track(number) for number in range(10)])).status_code == 200

    response = segment("track", track(10))

    assert response.status_code == 429
    assert response["Retry-After"] == "1"
    assert response.json() == {
        "success": False,
        "code": "rate_limited",
        "message": (
            "Rate limit reached: this API key may send 1 events per second. "
            "Retry in 1 second(s); nothing from this request was stored."
        ),
        "detail": (
            "Rate limit reached: this API key may send 1 events per second. "
            "Retry in 1 second(s); nothing from this request was stored."
        ),
    }
    assert Event.objects.count() == 10
    assert not Event.objects.filter(message_id="m-10").exists()


def test_retry_after_says_when_the_events_fit_again(limiter, settings, segment):
    settings.INGEST_RATE_LIMIT_EVENTS_PER_SECOND = 0.1  # one event every ten seconds
    settings.INGEST_RATE_LIMIT_EVENTS_BURST = 1
    assert segment("track", track(1)).status_code == 200

    response = segment("track", track(2))

    assert response.status_code == 429
    assert response["Retry-After"] == "10"


def test_another_key_is_unaffected(limiter, small_limit, segment, tenant, other_tenant):
    _, _, secret_key = tenant
    _, other_write_key, _ = other_tenant
    assert segment("batch", batch([track(number) for number in range(10)])).status_code == 200
    assert segment("track", track(10)).status_code == 429

    other_workspace = segment("track", track(11), key=other_write_key)
    same_workspace_other_key = segment("track", track(12), key=secret_key)

    assert (other_workspace.status_code, same_workspace_other_key.status_code) == (200, 200)
    assert set(
        Event.objects.filter(message_id__in=["m-11", "m-12"]).values_list("message_id", flat=True)
    ) == {
        "m-11",
        "m-12",
    }


def test_the_limit_counts_the_events_of_a_batch_not_requests(limiter, small_limit, segment):
    first = segment("batch", batch([track(number) for number in range(6)]))
    second = segment("batch", batch([track(number) for number in range(6, 12)]))
    rest = segment("batch", batch([track(number) for number in range(12, 16)]))

    assert [first.status_code, second.status_code, rest.status_code] == [200, 429, 200]
    assert Event.objects.count() == 10


def test_identify_calls_have_a_limit_of_their_own(limiter, small_limit, segment):
    assert segment("batch", batch([identify(1), identify(2), identify(3), track(1)])).status_code == 200

    refused = segment("identify", identify(4))
    track_still_admitted = segment("track", track(2))

    assert refused.status_code == 429
    assert refused.json()["detail"].startswith("Rate limit reached: this API key may send 1 identify calls")
    assert track_still_admitted.status_code == 200
    assert not Event.objects.filter(message_id="i-4").exists()


def test_a_refused_request_takes_nothing_from_the_allowance(limiter, small_limit, segment):
    assert segment("batch", batch([track(number) for number in range(8)])).status_code == 200
    assert segment("batch", batch([track(number) for number in range(8, 12)])).status_code == 429

    assert segment("batch", batch([track(number) for number in range(12, 14)])).status_code == 200
    assert Event.objects.count() == 10


def test_a_limit_of_zero_is_no_limit(limiter, settings, segment):
    settings.INGEST_RATE_LIMIT_EVENTS_PER_SECOND = 0
    settings.INGEST_RATE_LIMIT_EVENTS_BURST = 1

    statuses = [segment("track", track(number)).status_code for number in range(5)]

    assert statuses == [200] * 5


def test_browsers_can_read_retry_after(limiter, small_limit, segment):
    segment("batch", batch([track(number) for number in range(10)]))
    response = segment("track", track(10), HTTP_ORIGIN="https://app.example.com")

    assert response.status_code == 429
    assert "retry-after" in response["Access-Control-Expose-Headers"].lower()


# --- Redis unavailable: log, allow, count --------------------------------------------------------


def test_with_redis_down_requests_are_allowed_logged_once_and_counted(settings, small_limit, segment, caplog):
    settings.REDIS_URL = "redis://127.0.0.1:1/15"  # nothing listens there
    before = unavailable_total("ratelimit")

    with caplog.at_level(logging.WARNING, logger="guardrails.abuse.ratelimit"):
        statuses = [segment("track", track(number)).status_code for number in range(12)]

    assert statuses == [200] * 12
    assert Event.objects.count() == 12
    assert unavailable_total("ratelimit") - before == 12
    assert ratelimit.detector_unavailable_count() == 12
    warnings = [
        record for record in caplog.records if record.msg == "guardrails.abuse.detection.detector_unavailable"
    ]
    assert len(warnings) == 1  # the first failure opens the breaker; the others skip Redis
    assert (warnings[0].component, warnings[0].error) == ("ratelimit", "ConnectionError")
    assert "ada" not in caplog.text and "Project Created" not in caplog.text


def test_a_redis_timeout_allows_and_the_count_reaches_redis_once_it_answers(
    redis_url, settings, small_limit, segment, monkeypatch
):
    clear_abuse_counters(redis_url)
    settings.REDIS_URL = redis_url
    real_admit = RedisCounters.admit

    def times_out(self, **kwargs):
        raise redis.TimeoutError("Timeout reading from socket")

    monkeypatch.setattr(RedisCounters, "admit", times_out)
    statuses = [segment("track", track(number)).status_code for number in range(3)]
    monkeypatch.setattr(RedisCounters, "admit", real_admit)
    monkeypatch.setattr(ratelimit, "BREAKER_SECONDS", 0.0)
    monkeypatch.setattr(ratelimit, "_breaker_open_until", 0.0)
    answered = segment("track", track(3))

    assert statuses == [200, 200, 200]
    assert answered.status_code == 200
    assert cache.get(ratelimit.UNAVAILABLE_CACHE_KEY) == 3  # flushed by the Lua call, across processes
    assert ratelimit.detector_unavailable_count() == 3
    clear_abuse_counters(redis_url)


def test_an_unreachable_limiter_costs_no_timeout_while_the_breaker_is_open(settings, monkeypatch, tenant):
    settings.REDIS_URL = "redis://127.0.0.1:1/15"
    calls = []
    real_admit = RedisCounters.admit

    def counting(self, **kwargs):
        calls.append(1)
        return real_admit(self, **kwargs)

    monkeypatch.setattr(RedisCounters, "admit", counting)
    api_key = tenant[0].api_keys.get(kind="write")

    admissions = [ratelimit.admit(api_key=api_key, events=1) for _ in range(50)]

    assert all(admission.allowed for admission in admissions)
    assert len(calls) == 1


def test_the_single_call_and_batch_counts(limiter, at_minute, settings, segment, tenant):
    minute = ratelimit.current_minute()
    at_minute(minute)
    settings.INGEST_RATE_LIMIT_EVENTS_PER_SECOND = 0
    segment("track", track(1))
    segment("batch", batch([identify(1), identify(2), track(2)]))

    api_key = tenant[0].api_keys.get(kind="write")
    counts = ratelimit.counters().minute_counts(api_key_ids=[api_key.pk], minutes=[minute])[api_key.pk][0]

    assert (counts.events, counts.identifies, counts.invalid, counts.limited) == (4, 2, 0, 0)


def test_invalid_events_are_counted_for_the_key(limiter, at_minute, settings, segment, tenant):
    minute = ratelimit.current_minute()
    at_minute(minute)
    settings.INGEST_RATE_LIMIT_EVENTS_PER_SECOND = 0
    response = segment("batch", batch([track(1), {"type": "track"}, {"type": "nonsense"}]))
    single = segment("track", {"type": "track", "userId": "ada"})  # no event name
    not_a_batch = segment("batch", {"batch": "nope"})

    api_key = tenant[0].api_keys.get(kind="write")
    counts = ratelimit.counters().minute_counts(api_key_ids=[api_key.pk], minutes=[minute])[api_key.pk][0]

    assert [response.status_code, single.status_code, not_a_batch.status_code] == [400, 400, 400]
    # A body that is not a batch is refused before the limiter counts events: it holds none.
    assert (counts.events, counts.invalid) == (4, 4)


def test_a_flood_of_refusals_is_logged_once_per_key_and_interval(limiter, small_limit, segment, caplog):
    segment("batch", batch([track(number) for number in range(10)]))

    with caplog.at_level(logging.INFO, logger="guardrails.abuse.ratelimit"):
        statuses = [segment("track", track(number)).status_code for number in range(10, 15)]

    assert statuses == [429] * 5
    [line] = [record for record in caplog.records if record.msg == "guardrails.abuse.ratelimit.refused"]
    assert (line.limit, line.events, line.retry_after) == ("events", 1, 1)
