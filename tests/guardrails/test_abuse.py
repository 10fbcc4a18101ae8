"""Abuse detection: bursts over a key's own baseline, invalid payloads, rate limits reached,
identify storms on one user, end-user token misuse, and what a flag on a user stops."""

from datetime import UTC, datetime, timedelta

import pytest
import redis
from django.core.cache import cache
from django.core.management import call_command

from guardrails.abuse import detection as abuse
from guardrails.abuse import ratelimit, token_misuse
from guardrails.abuse.counters import ProcessCounters, RedisCounters
from guardrails.abuse.flags import abuse_flags_resolve
from guardrails.jobs import detect_abuse_job
from guardrails.models import AbuseFlag
from guardrails.policy import engine as policy
from tenancy import tokens
from tenancy.models import ApiKey
from tests.factories import EndUserFactory

pytestmark = pytest.mark.django_db

MINUTE = 29_000_000  # an arbitrary minute index (minutes since the epoch)


def minute_start(minute: int) -> str:
    return datetime.fromtimestamp(minute * 60, tz=UTC).isoformat()


@pytest.fixture(autouse=True)
def _fresh_state(settings):
    ratelimit.reset_for_tests()
    cache.clear()
    settings.INGEST_RATE_LIMIT_EVENTS_PER_SECOND = 0  # counting, not limiting, unless a test says so
    settings.INGEST_RATE_LIMIT_IDENTIFIES_PER_SECOND = 0
    yield
    ratelimit.reset_for_tests()


@pytest.fixture
def write_key(tenant) -> ApiKey:
    return tenant[0].api_keys.get(kind=ApiKey.Kind.WRITE)


def send(at_minute, api_key: ApiKey, minute: int, *, events: int = 0, identifies: int = 0) -> None:
    at_minute(minute)
    ratelimit.admit(api_key=api_key, events=events + identifies, identifies=identifies)


def steady_hour(at_minute, api_key: ApiKey, *, events: int = 0, identifies: int = 0) -> None:
    """The baseline hour before the recent minutes of a pass run at MINUTE."""
    for minute in range(MINUTE - 65, MINUTE - 5):
        send(at_minute, api_key, minute, events=events, identifies=identifies)


# --- The judgements ------------------------------------------------------------------------------


def test_the_baseline_is_the_95th_percentile_so_one_earlier_spike_does_not_raise_it():
    assert abuse.baseline([100] * 59 + [5000]) == 100
    assert abuse.baseline([0] * 56 + [10_000] * 4) == 10_000  # a bulk upload every 15 minutes
    assert abuse.baseline([]) == 0


def test_a_burst_is_ten_times_the_baseline_and_over_the_floor():
    assert abuse.burst_over_baseline(recent=[100, 100, 5000, 100, 100], history=[100] * 60, floor=3000) == (
        abuse.Burst(peak_per_minute=5000, baseline_per_minute=100.0, peak_minute_index=2)
    )
    assert abuse.burst_over_baseline(recent=[1200] * 5, history=[1000] * 60, floor=3000) is None
    assert abuse.burst_over_baseline(recent=[2999], history=[0] * 60, floor=3000) is None
    assert abuse.burst_over_baseline(recent=[3000], history=[], floor=3000) == abuse.Burst(3000, 0.0, 0)
    assert abuse.burst_over_baseline(recent=[10_000], history=[0] * 56 + [10_000] * 4, floor=3000) is None


# --- The pass over the counters ------------------------------------------------------------------


def test_a_burst_far_over_the_keys_baseline_is_flagged_once(limiter, at_minute, write_key):
    steady_hour(at_minute, write_key, events=100)
    send(at_minute, write_key, MINUTE - 3, events=5000)

    first = abuse.abuse_detect(minute=MINUTE)
    second = abuse.abuse_detect(minute=MINUTE)

    flag = AbuseFlag.objects.get()
    assert (flag.kind, flag.workspace, flag.api_key, flag.end_user, flag.resolved_at) == (
        AbuseFlag.Kind.EVENT_RATE,
        write_key.workspace,
        write_key,
        None,
        None,
    )
    assert flag.detail == {
        "peak_events_per_minute": 5000,
        "baseline_events_per_minute": 100.0,
        "ratio": 50.0,
        "threshold_ratio": 10.0,
        "floor_per_minute": 3000,
        "minute": minute_start(MINUTE - 3),
        "baseline_minutes": 60,
        "recent_minutes": 5,
        "since": minute_start(MINUTE - 5),
        "subject": f"api_key:{write_key.pk}",
    }
    assert (first.api_keys, dict(first.flagged)) == (1, {"event_rate": 1})
    assert dict(second.flagged) == {}


def test_steady_traffic_and_regular_bulk_uploads_are_not_flagged(limiter, at_minute, tenant, other_tenant):
    steady = tenant[0].api_keys.get(kind=ApiKey.Kind.WRITE)
    bulk = other_tenant[0].api_keys.get(kind=ApiKey.Kind.WRITE)
    steady_hour(at_minute, steady, events=1000)
    for minute in range(MINUTE - 65, MINUTE - 5, 15):
        send(at_minute, bulk, minute, events=10_000)
    for minute in range(MINUTE - 5, MINUTE):
        send(at_minute, steady, minute, events=1200)
    send(at_minute, bulk, MINUTE - 2, events=10_000)

    report = abuse.abuse_detect(minute=MINUTE)

    assert (report.api_keys, dict(report.flagged)) == (2, {})
    assert not AbuseFlag.objects.exists()


def test_an_identify_burst_is_flagged_on_its_own(limiter, at_minute, write_key):
    steady_hour(at_minute, write_key, identifies=10)
    send(at_minute, write_key, MINUTE - 1, identifies=1000)

    abuse.abuse_detect(minute=MINUTE)

    flag = AbuseFlag.objects.get()
    assert flag.kind == AbuseFlag.Kind.IDENTIFY_RATE
    assert (flag.detail["peak_identifies_per_minute"], flag.detail["baseline_identifies_per_minute"]) == (
        1000,
        10.0,
    )
    assert flag.detail["ratio"] == 100.0


def test_repeated_invalid_payloads_are_flagged(limiter, at_minute, segment, tenant, write_key):
    minute = ratelimit.current_minute()
    at_minute(minute)
    invalid = [{"type": "track", "userId": "ada", "messageId": f"bad-{number}"} for number in range(60)]
    responses = [segment("batch", {"batch": invalid}), segment("batch", {"batch": invalid})]

    report = abuse.abuse_detect(minute=minute + 1)

    assert [response.status_code for response in responses] == [400, 400]
    flag = AbuseFlag.objects.get()
    assert (flag.kind, flag.api_key, dict(report.flagged)) == (
        AbuseFlag.Kind.INVALID_PAYLOADS,
        write_key,
        {"invalid_payloads": 1},
    )
    assert flag.detail == {
        "invalid_events": 120,
        "events": 120,
        "invalid_share": 1.0,
        "floor": 100,
        "share_threshold": 0.2,
        "recent_minutes": 5,
        "since": minute_start(minute - 4),
        "subject": f"api_key:{write_key.pk}",
    }


def test_a_few_invalid_events_or_a_small_share_are_not_flagged(limiter, at_minute, tenant, other_tenant):
    few = tenant[0].api_keys.get(kind=ApiKey.Kind.WRITE)
    small_share = other_tenant[0].api_keys.get(kind=ApiKey.Kind.WRITE)
    at_minute(MINUTE - 1)
    ratelimit.admit(api_key=few, events=99)
    ratelimit.invalid_events_record(api_key=few, count=99)
    ratelimit.admit(api_key=small_share, events=1000)
    ratelimit.invalid_events_record(api_key=small_share, count=150)

    abuse.abuse_detect(minute=MINUTE)

    assert not AbuseFlag.objects.exists()


def test_a_key_refused_by_its_rate_limit_is_flagged(limiter, at_minute, settings, segment, write_key):
    settings.INGEST_RATE_LIMIT_EVENTS_PER_SECOND = 1
    settings.INGEST_RATE_LIMIT_EVENTS_BURST = 2
    minute = ratelimit.current_minute()
    at_minute(minute)
    track = {"type": "track", "event": "Project Created", "userId": "ada"}
    statuses = [segment("track", track).status_code for _ in range(4)]

    abuse.abuse_detect(minute=minute + 1)

    assert statuses == [200, 200, 429, 429]
    flag = AbuseFlag.objects.get()
    assert (flag.kind, flag.api_key) == (AbuseFlag.Kind.RATE_LIMITED, write_key)
    assert {key: flag.detail[key] for key in ("refused_events", "events", "limit_events_per_second")} == {
        "refused_events": 2,
        "events": 4,
        "limit_events_per_second": 1,
    }


def test_an_identify_storm_on_one_user_flags_that_user(limiter, at_minute, segment, tenant):
    minute = ratelimit.current_minute()
    at_minute(minute)
    when = datetime.fromtimestamp(minute * 60 + 30, tz=UTC).isoformat()

    def identify(user_id: str, number: int) -> dict:
        return {"type": "identify", "userId": user_id, "timestamp": when, "messageId": f"{user_id}-{number}"}

    calls = [identify("storm", number) for number in range(31)] + [
        identify("calm", number) for number in range(5)
    ]
    assert segment("batch", {"batch": calls}).status_code == 200

    report = abuse.abuse_detect(minute=minute + 1)

    storm = tenant[0].end_users.get(external_id="storm")
    flag = AbuseFlag.objects.get()
    assert (flag.kind, flag.end_user, flag.api_key, dict(report.flagged)) == (
        AbuseFlag.Kind.IDENTIFY_RATE,
        storm,
        None,
        {"identify_rate_end_user": 1},
    )
    assert flag.detail == {
        "scope": "end_user",
        "peak_identifies_per_minute": 31,
        "threshold_per_minute": 30,
        "recent_minutes": 5,
        "since": minute_start(minute - 4),
        "subject": f"end_user:{storm.pk}",
    }


def test_an_open_flag_on_a_user_stops_their_nudges_until_resolved(limiter, at_minute, segment, tenant):
    minute = ratelimit.current_minute()
    at_minute(minute)
    when = datetime.fromtimestamp(minute * 60 + 30, tz=UTC).isoformat()
    calls = [
        {"type": "identify", "userId": "storm", "timestamp": when, "messageId": f"s-{n}"} for n in range(31)
    ]
    calls.append({"type": "identify", "userId": "calm", "timestamp": when, "messageId": "c-1"})
    segment("batch", {"batch": calls})
    abuse.abuse_detect(minute=minute + 1)
    storm = tenant[0].end_users.get(external_id="storm")
    calm = tenant[0].end_users.get(external_id="calm")

    denied = policy.check(policy.LLM_CALL, storm)
    other_user = policy.check(policy.LLM_CALL, calm)
    abuse_flags_resolve(flags=AbuseFlag.objects.filter(end_user=storm))
    after_resolving = policy.check(policy.LLM_CALL, storm)

    assert "abuse_flag" in [reason.code for reason in denied.reasons]
    assert not denied.allowed
    assert "abuse_flag" not in [reason.code for reason in other_user.reasons]
    assert "abuse_flag" not in [reason.code for reason in after_resolving.reasons]
    assert AbuseFlag.objects.get().resolved_at is not None


def test_with_the_counters_unreadable_the_pass_flags_nothing_and_counts_it(
    limiter, at_minute, write_key, monkeypatch
):
    steady_hour(at_minute, write_key, events=100)
    send(at_minute, write_key, MINUTE - 1, events=5000)
    store_class = RedisCounters if limiter == "redis" else ProcessCounters

    def unreachable(self, **kwargs):
        raise redis.ConnectionError("Connection refused")

    monkeypatch.setattr(store_class, "active_key_ids", unreachable)
    before = ratelimit.DETECTOR_UNAVAILABLE.labels(component="detector")._value.get()

    report = abuse.abuse_detect(minute=MINUTE)

    assert report.unavailable
    assert not AbuseFlag.objects.exists()
    assert ratelimit.DETECTOR_UNAVAILABLE.labels(component="detector")._value.get() - before == 1
    assert ratelimit.detector_unavailable_count() == 1


def test_the_job_and_the_command_run_one_pass(limiter, at_minute, write_key, capsys):
    steady_hour(at_minute, write_key, events=100)
    send(at_minute, write_key, MINUTE - 1, events=5000)
    at_minute(MINUTE)

    assert detect_abuse_job() == {"api_keys": 1, "flagged": {"event_rate": 1}, "unavailable": False}
    call_command("detect_abuse")

    out = capsys.readouterr().out
    assert "1 active API key(s) judged; new flags: none." in out
    assert "Detector unavailable so far: 0 time(s)." in out
    assert AbuseFlag.objects.count() == 1


def test_the_scheduler_runs_the_pass_every_minute():
    from django_rq.cron import DjangoCronScheduler

    scheduler = DjangoCronScheduler()
    scheduler.load_config_from_file("config.cron")

    [job] = [job for job in scheduler.get_jobs() if job.func_name == "guardrails.jobs.detect_abuse_job"]
    assert (job.queue_name, job.interval) == ("default", 60)


# --- End-user token misuse -----------------------------------------------------------------------

ONBOARDING = "/api/v1/users/{}/onboarding"


def _bearer(api_client, token: str):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return api_client


@pytest.fixture
def ada_and_grace(tenant):
    workspace = tenant[0]
    return EndUserFactory(workspace=workspace, external_id="ada"), EndUserFactory(
        workspace=workspace, external_id="grace"
    )


def test_a_token_used_on_another_users_url_again_and_again_flags_its_holder(
    api_client, ada_and_grace, one_misuse_window
):
    ada, _ = ada_and_grace
    token, _ = tokens.token_issue(end_user=ada)
    client = _bearer(api_client, token)

    statuses = [client.get(ONBOARDING.format("grace")).status_code for _ in range(token_misuse.THRESHOLD - 1)]
    assert not AbuseFlag.objects.exists()
    statuses += [client.get(ONBOARDING.format("grace")).status_code for _ in range(5)]

    assert statuses == [403] * (token_misuse.THRESHOLD + 4)
    flag = AbuseFlag.objects.get()
    assert (flag.kind, flag.workspace, flag.end_user, flag.api_key) == (
        AbuseFlag.Kind.TOKEN_MISUSE,
        ada.workspace,
        ada,
        None,
    )
    assert flag.detail == {
        "reason": "other_user",
        "failures": 20,
        "window_seconds": 600,
        "claims_verified": True,
        "token_end_user_id": ada.pk,
        "subject": f"token_user:{ada.workspace_id}:{ada.pk}",
    }
    assert not policy.check(policy.LLM_CALL, ada).allowed


def test_an_expired_token_replayed_is_flagged_without_stopping_the_users_nudges(
    api_client, ada_and_grace, monkeypatch, one_misuse_window
):
    ada, _ = ada_and_grace
    token, expires_at = tokens.token_issue(end_user=ada, lifetime=timedelta(seconds=60))
    monkeypatch.setattr(tokens, "_now", lambda: expires_at.timestamp() + 1)
    client = _bearer(api_client, token)

    statuses = {client.get(ONBOARDING.format("ada")).status_code for _ in range(token_misuse.THRESHOLD)}

    assert statuses == {401}
    flag = AbuseFlag.objects.get()
    assert (flag.kind, flag.end_user, flag.detail["reason"], flag.detail["token_end_user_id"]) == (
        AbuseFlag.Kind.TOKEN_MISUSE,
        None,
        "expired",
        ada.pk,
    )
    assert "abuse_flag" not in [reason.code for reason in policy.check(policy.LLM_CALL, ada).reasons]


def test_forged_tokens_are_counted_per_client_and_flagged_unverified(
    api_client, ada_and_grace, settings, one_misuse_window
):
    ada, _ = ada_and_grace
    token, _ = tokens.token_issue(end_user=ada)
    server_secret = settings.SECRET_KEY
    settings.SECRET_KEY = "another-secret-key-an-attacker-might-have-guessed-0123456789"
    forged, _ = tokens.token_issue(end_user=ada)  # the same claims, signed with the wrong key
    settings.SECRET_KEY = server_secret
    client = _bearer(api_client, forged)

    statuses = {client.get(ONBOARDING.format("ada")).status_code for _ in range(token_misuse.THRESHOLD)}

    assert token != forged
    assert statuses == {401}
    flag = AbuseFlag.objects.get()
    assert (flag.kind, flag.workspace, flag.end_user) == (AbuseFlag.Kind.TOKEN_MISUSE, ada.workspace, None)
    assert flag.detail["reason"] == "invalid"
    assert flag.detail["claims_verified"] is False
    assert flag.detail["token_end_user_id"] is None
    assert flag.detail["subject"].startswith("token_client:")
    assert "127.0.0.1" not in str(flag.detail)


def test_garbage_tokens_naming_no_workspace_are_only_logged(
    api_client, ada_and_grace, caplog, one_misuse_window
):
    client = _bearer(api_client, "ut_garbage")

    statuses = {client.get(ONBOARDING.format("ada")).status_code for _ in range(token_misuse.THRESHOLD)}

    assert statuses == {401}
    assert not AbuseFlag.objects.exists()
    assert "guardrails.abuse.token_misuse.unattributed" in [record.msg for record in caplog.records]


def test_with_the_cache_down_token_refusals_still_refuse_and_are_counted(
    api_client, ada_and_grace, monkeypatch
):
    ada, _ = ada_and_grace
    token, _ = tokens.token_issue(end_user=ada)

    def cache_down(*args, **kwargs):
        raise ConnectionError("cache unavailable")

    monkeypatch.setattr(cache, "add", cache_down)
    before = ratelimit.DETECTOR_UNAVAILABLE.labels(component="token_misuse")._value.get()

    response = _bearer(api_client, token).get(ONBOARDING.format("grace"))

    assert response.status_code == 403
    assert ratelimit.DETECTOR_UNAVAILABLE.labels(component="token_misuse")._value.get() - before == 1
    assert not AbuseFlag.objects.exists()
