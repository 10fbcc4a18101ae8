"""Delivery through a workspace's providers: failover after three consecutive failures, the
circuit breaker and its half-open trial, rate limits, rejections, and the region rule. The
providers are Twilio primaries and backups answered by a local server."""

import threading
from datetime import timedelta

import pytest
from django.db import close_old_connections
from django.utils import timezone

from guardrails.models import WorkspacePolicy
from guardrails.regions import RegionBlocked
from nudges.delivery.failover import NoProvider, ProviderRegionBlocked, deliver
from nudges.gateways import GATEWAYS, idempotent_resend
from nudges.gateways.base import GatewayError, NoAddress, ProviderUnavailable, RateLimited, Rejected
from nudges.gateways.breaker import State, breaker_allows, breaker_record_failure, breaker_state
from nudges.models import ChannelProvider
from tests.factories import WorkspaceFactory
from tests.nudges.factories import ProviderWithSecretFactory
from tests.nudges.providers import message_for, recipient_for, twilio_error, twilio_message

ACCOUNT = "AC0123456789abcdef0123456789abcdef"
PATH = f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
NOW = timezone.now().replace(microsecond=0)


@pytest.fixture
def workspace(db):
    return WorkspaceFactory()


@pytest.fixture
def twilio(workspace, httpserver):
    def make(prefix: str, *, priority: int, region: str = "us", **fields) -> ChannelProvider:
        return ProviderWithSecretFactory(
            workspace=workspace,
            channel="sms",
            provider="twilio",
            priority=priority,
            region=region,
            settings={
                "account_sid": ACCOUNT,
                "from_number": "+15005550006",
                "api_url": httpserver.url_for(prefix),
            },
            secret="twilio-auth-token",
            **fields,
        )

    return make


@pytest.fixture
def primary(twilio):
    return twilio("/primary", priority=1)


@pytest.fixture
def backup(twilio):
    return twilio("/backup", priority=2)


def answer(httpserver, prefix: str, *, status: int = 201, body=None, headers=None):
    body = body if body is not None else twilio_message(sid=f"SM{prefix.strip('/')}")
    httpserver.expect_request(prefix + PATH).respond_with_json(body, status=status, headers=headers)


def requests_to(httpserver, prefix: str) -> int:
    return sum(1 for request, _ in httpserver.log if request.path.startswith(prefix + "/"))


def send(workspace, *, now=NOW, recipient=None):
    return deliver(
        workspace=workspace,
        channel="sms",
        message=message_for(channel="sms", workspace_id=workspace.pk),
        recipient=recipient or recipient_for(),
        now=now,
    )


def outcomes(attempts) -> list[tuple[int, str]]:
    return [(attempt["priority"], attempt["outcome"]) for attempt in attempts]


def test_the_primary_sends_and_the_attempt_is_recorded(workspace, primary, backup, httpserver):
    answer(httpserver, "/primary")

    delivery = send(workspace)

    assert delivery.provider == primary
    assert delivery.result.provider_message_id == "SMprimary"
    [attempt] = delivery.attempts
    assert attempt["provider_id"] == primary.pk
    assert (attempt["provider"], attempt["outcome"], attempt["reason"]) == ("twilio", "sent", "")
    assert attempt["duration_ms"] >= 0
    assert requests_to(httpserver, "/backup") == 0


def test_a_first_failure_is_raised_for_a_later_retry_not_failed_over(workspace, primary, backup, httpserver):
    answer(httpserver, "/primary", status=503, body={"message": "down"})

    with pytest.raises(ProviderUnavailable) as unavailable:
        send(workspace)

    assert unavailable.value.reason == "Twilio is unavailable (503): down"
    assert outcomes(unavailable.value.attempts) == [(1, "unavailable")]
    primary.refresh_from_db()
    assert (primary.consecutive_failures, primary.open_until) == (1, None)
    assert primary.last_error == "Twilio is unavailable (503): down"
    assert requests_to(httpserver, "/backup") == 0


def test_the_third_consecutive_failure_opens_the_breaker_and_the_backup_sends(
    workspace, primary, backup, httpserver
):
    answer(httpserver, "/primary", status=500, body={})
    answer(httpserver, "/backup")
    for _ in range(2):
        with pytest.raises(ProviderUnavailable):
            send(workspace)

    delivery = send(workspace)

    assert delivery.provider == backup
    assert delivery.result.provider_message_id == "SMbackup"
    assert outcomes(delivery.attempts) == [(1, "unavailable"), (2, "sent")]
    primary.refresh_from_db()
    assert primary.consecutive_failures == 3
    assert primary.open_until == NOW + timedelta(seconds=300)
    assert breaker_state(primary, now=NOW) == State.OPEN


def test_while_open_the_primary_is_skipped_until_its_cool_down_ends(workspace, primary, backup, httpserver):
    ChannelProvider.objects.filter(pk=primary.pk).update(
        consecutive_failures=3, open_until=NOW + timedelta(minutes=5)
    )
    answer(httpserver, "/primary")
    answer(httpserver, "/backup")

    delivery = send(workspace, now=NOW + timedelta(minutes=4))

    assert delivery.provider == backup
    assert outcomes(delivery.attempts) == [(1, "skipped"), (2, "sent")]
    assert delivery.attempts[0]["reason"] == f"circuit open until {(NOW + timedelta(minutes=5)).isoformat()}"
    assert requests_to(httpserver, "/primary") == 0


def test_after_the_cool_down_one_trial_goes_to_the_primary_and_its_success_closes_the_breaker(
    workspace, primary, backup, httpserver
):
    ChannelProvider.objects.filter(pk=primary.pk).update(
        consecutive_failures=3, open_until=NOW, last_error="Twilio is unavailable (500)"
    )
    answer(httpserver, "/primary")

    delivery = send(workspace, now=NOW + timedelta(seconds=1))

    assert delivery.provider == primary
    primary.refresh_from_db()
    assert (primary.consecutive_failures, primary.open_until, primary.last_error) == (0, None, "")


def test_a_failed_trial_opens_the_breaker_again_and_the_backup_sends(workspace, primary, backup, httpserver):
    ChannelProvider.objects.filter(pk=primary.pk).update(consecutive_failures=3, open_until=NOW)
    answer(httpserver, "/primary", status=502, body={})
    answer(httpserver, "/backup")
    later = NOW + timedelta(seconds=10)

    delivery = send(workspace, now=later)

    assert delivery.provider == backup
    assert outcomes(delivery.attempts) == [(1, "unavailable"), (2, "sent")]
    primary.refresh_from_db()
    assert primary.consecutive_failures == 4
    assert primary.open_until == later + timedelta(seconds=300)


def test_only_one_worker_gets_the_half_open_trial(workspace, primary):
    ChannelProvider.objects.filter(pk=primary.pk).update(consecutive_failures=3, open_until=NOW)
    seen_by_first = ChannelProvider.objects.get(pk=primary.pk)
    seen_by_second = ChannelProvider.objects.get(pk=primary.pk)
    later = NOW + timedelta(seconds=1)

    assert breaker_allows(provider=seen_by_first, now=later)
    assert not breaker_allows(provider=seen_by_second, now=later)


def test_the_cool_down_comes_from_the_setting(workspace, primary, settings):
    settings.NUDGE_PROVIDER_COOLDOWN_SECONDS = 60
    for _ in range(3):
        opened = breaker_record_failure(provider=primary, reason="down", now=NOW)

    assert opened
    primary.refresh_from_db()
    assert primary.open_until == NOW + timedelta(seconds=60)


def test_every_provider_open_is_unavailable_until_a_cool_down_ends(workspace, primary, backup, httpserver):
    ChannelProvider.objects.update(consecutive_failures=3, open_until=NOW + timedelta(minutes=5))

    with pytest.raises(ProviderUnavailable) as unavailable:
        send(workspace)

    assert unavailable.value.reason == (
        "no sms provider can be tried now: their circuits are open (cool-down); retry later"
    )
    assert outcomes(unavailable.value.attempts) == [(1, "skipped"), (2, "skipped")]
    assert httpserver.log == []


def test_a_rate_limited_primary_hands_over_to_the_backup_without_counting_a_failure(
    workspace, primary, backup, httpserver
):
    answer(
        httpserver,
        "/primary",
        status=429,
        body=twilio_error(code=20429, message="Too Many Requests", status=429),
    )
    answer(httpserver, "/backup")

    delivery = send(workspace)

    assert delivery.provider == backup
    assert outcomes(delivery.attempts) == [(1, "rate_limited"), (2, "sent")]
    primary.refresh_from_db()
    assert primary.consecutive_failures == 0


def test_when_every_provider_is_rate_limited_the_shortest_wait_is_given(
    workspace, primary, backup, httpserver
):
    limited = twilio_error(code=20429, message="Too Many Requests", status=429)
    answer(httpserver, "/primary", status=429, body=limited, headers={"Retry-After": "30"})
    answer(httpserver, "/backup", status=429, body=limited, headers={"Retry-After": "10"})

    with pytest.raises(RateLimited) as rate_limited:
        send(workspace)

    assert rate_limited.value.retry_after == 10
    assert rate_limited.value.reason == "every sms provider is rate limited (retry in 10 s)"
    assert outcomes(rate_limited.value.attempts) == [(1, "rate_limited"), (2, "rate_limited")]


def test_a_rejection_is_final_and_not_failed_over(workspace, primary, backup, httpserver):
    ChannelProvider.objects.filter(pk=primary.pk).update(consecutive_failures=2)
    body = twilio_error(code=21211, message="The 'To' number is not a valid phone number.", status=400)
    answer(httpserver, "/primary", status=400, body=body)

    with pytest.raises(Rejected) as rejected:
        send(workspace)

    assert outcomes(rejected.value.attempts) == [(1, "rejected")]
    assert requests_to(httpserver, "/backup") == 0
    primary.refresh_from_db()
    assert primary.consecutive_failures == 0  # it answered: it is up


def test_no_address_is_raised_at_once(workspace, primary, backup, httpserver):
    with pytest.raises(NoAddress) as no_address:
        send(workspace, recipient=recipient_for(phone=""))

    assert outcomes(no_address.value.attempts) == [(1, "no_address")]
    assert httpserver.log == []


def test_a_provider_outside_the_workspace_region_is_never_used(workspace, twilio, httpserver):
    WorkspacePolicy.objects.create(workspace=workspace, data_region="eu")
    twilio("/us", priority=1, region="us")
    in_region = twilio("/eu", priority=2, region="eu")
    answer(httpserver, "/us")
    answer(httpserver, "/eu")

    delivery = send(workspace)

    assert delivery.provider == in_region
    assert outcomes(delivery.attempts) == [(1, "skipped"), (2, "sent")]
    assert delivery.attempts[0]["reason"] == "its region 'us' is not the workspace's data region 'eu'"
    assert requests_to(httpserver, "/us") == 0


def test_no_provider_in_the_workspace_region_blocks_the_send(workspace, twilio, httpserver):
    WorkspacePolicy.objects.create(workspace=workspace, data_region="eu")
    twilio("/us", priority=1, region="us")

    with pytest.raises(ProviderRegionBlocked) as blocked:
        send(workspace)

    assert isinstance(blocked.value, RegionBlocked)
    assert isinstance(blocked.value, GatewayError)
    assert (blocked.value.service, blocked.value.region) == ("sms", "eu")
    assert blocked.value.reason == (
        "blocked: no sms provider is in the workspace's data region 'eu' (1 configured elsewhere); "
        "user data is never sent to another region"
    )
    assert httpserver.log == []


def test_no_active_provider_is_a_clear_error(workspace, twilio):
    twilio("/off", priority=1, is_active=False)

    with pytest.raises(NoProvider) as no_provider:
        send(workspace)

    assert no_provider.value.reason == "no sms provider is configured for this workspace"


# --- Real concurrency (PostgreSQL row locks) ------------------------------------------------------


def run_together(count: int, work) -> list:
    results: list = [None] * count
    barrier = threading.Barrier(count)

    def run(index: int) -> None:
        try:
            barrier.wait()
            results[index] = work()
        finally:
            close_old_connections()

    threads = [threading.Thread(target=run, args=(index,)) for index in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_failures_are_all_counted_and_open_the_breaker_once(postgres):
    provider = ProviderWithSecretFactory(channel="sms", provider="twilio")

    def fail():
        return breaker_record_failure(
            provider=ChannelProvider.objects.get(pk=provider.pk),
            reason="Twilio is unavailable (503)",
            now=NOW,
        )

    run_together(8, fail)

    provider.refresh_from_db()
    assert provider.consecutive_failures == 8
    assert provider.open_until == NOW + timedelta(seconds=300)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_workers_get_a_single_half_open_trial(postgres):
    provider = ProviderWithSecretFactory(channel="sms", provider="twilio")
    ChannelProvider.objects.filter(pk=provider.pk).update(consecutive_failures=3, open_until=NOW)
    later = NOW + timedelta(seconds=1)

    allowed = run_together(
        8, lambda: breaker_allows(provider=ChannelProvider.objects.get(pk=provider.pk), now=later)
    )

    assert allowed.count(True) == 1


def test_no_provider_is_assumed_to_drop_a_second_send_without_documenting_it():
    """An in-flight send whose worker died is sent again only where the provider deduplicates by
    idempotency key; none of the registered ones documents that, so theirs go to in doubt."""
    assert {code: idempotent_resend(code) for code in GATEWAYS} == dict.fromkeys(GATEWAYS, False)
