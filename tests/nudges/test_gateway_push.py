"""The web push gateway against local push services (each subscription's endpoint is one)."""

import base64
import json
import re

import pytest

from nudges.gateways import gateway_for
from nudges.gateways.base import NoAddress, ProviderUnavailable, PushTarget, RateLimited, Rejected
from nudges.gateways.push import WebPushGateway, push_subscription_revoke, topic_for
from nudges.models import PushSubscription
from tests.factories import CANARY_FIRST_NAME, EndUserFactory
from tests.nudges.factories import ProviderWithSecretFactory, PushSubscriptionFactory
from tests.nudges.providers import PushSubscriber, message_for, recipient_for, vapid_key_pair

pytestmark = pytest.mark.django_db

VAPID_PRIVATE, VAPID_PUBLIC = vapid_key_pair()


@pytest.fixture
def end_user():
    return EndUserFactory()


@pytest.fixture
def provider(end_user):
    return ProviderWithSecretFactory(
        workspace=end_user.workspace,
        channel="push",
        provider="webpush",
        settings={"vapid_subject": "mailto:push@acme.example.com", "ttl": 3600},
        secret=VAPID_PRIVATE,
    )


def subscribe(end_user, httpserver, path: str) -> tuple[PushSubscription, PushSubscriber, PushTarget]:
    browser = PushSubscriber()
    subscription = PushSubscriptionFactory(
        end_user=end_user, endpoint=httpserver.url_for(path), p256dh=browser.p256dh, auth=browser.auth
    )
    target = PushTarget(subscription.pk, subscription.endpoint, subscription.p256dh, subscription.auth)
    return subscription, browser, target


def send(provider, end_user, *targets):
    message = message_for(channel="push", workspace_id=end_user.workspace_id)
    return WebPushGateway().send(
        provider=provider, message=message, recipient=recipient_for(push_targets=targets)
    )


def jwt_claims(authorization: str) -> dict:
    token = re.search(r"t=([^,\s]+)", authorization).group(1)
    claims = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))


def test_the_registry_gives_the_push_gateway():
    assert isinstance(gateway_for("webpush"), WebPushGateway)


def test_a_push_is_signed_with_vapid_and_encrypted_for_the_browser(provider, end_user, httpserver):
    _, browser, target = subscribe(end_user, httpserver, "/push/abc")
    location = httpserver.url_for("/push/messages/m-1")
    httpserver.expect_request("/push/abc", method="POST").respond_with_data(
        "", status=201, headers={"Location": location}
    )

    result = send(provider, end_user, target)

    assert result.provider_message_id == location
    assert result.detail == {"delivered": 1, "gone": 0, "failed": 0}
    [(request, _)] = httpserver.log
    assert request.headers["TTL"] == "3600"
    assert request.headers["Content-Encoding"] == "aes128gcm"
    assert request.headers["Topic"] == topic_for("7:4242:step:connect-data")
    assert len(request.headers["Topic"]) <= 32
    authorization = request.headers["Authorization"]
    assert f"k={VAPID_PUBLIC}" in authorization
    claims = jwt_claims(authorization)
    assert claims["sub"] == "mailto:push@acme.example.com"
    assert claims["aud"] == httpserver.url_for("/").rstrip("/")
    assert browser.decrypt(request.get_data()) == {
        "title": "Finish connecting your data",
        "body": f"Hi {CANARY_FIRST_NAME}, you are 60% through Getting started.",
        "url": "https://app.example.com/t/signed-link",
        "nudge_id": 4242,
    }


def test_a_gone_subscription_is_revoked_and_the_next_one_still_gets_the_push(provider, end_user, httpserver):
    gone, _, gone_target = subscribe(end_user, httpserver, "/push/old")
    kept, _, kept_target = subscribe(end_user, httpserver, "/push/new")
    httpserver.expect_request("/push/old").respond_with_data("push subscription has unsubscribed", status=410)
    httpserver.expect_request("/push/new").respond_with_data("", status=201)

    result = send(provider, end_user, gone_target, kept_target)

    assert result.detail == {"delivered": 1, "gone": 1, "failed": 0}
    assert result.provider_message_id.startswith("webpush-")  # no Location header
    gone.refresh_from_db()
    kept.refresh_from_db()
    assert gone.revoked_at is not None
    assert kept.revoked_at is None


def test_when_every_subscription_is_gone_there_is_no_address(provider, end_user, httpserver):
    first, _, first_target = subscribe(end_user, httpserver, "/push/one")
    second, _, second_target = subscribe(end_user, httpserver, "/push/two")
    httpserver.expect_request("/push/one").respond_with_data("", status=404)
    httpserver.expect_request("/push/two").respond_with_data("", status=410)

    with pytest.raises(NoAddress) as no_address:
        send(provider, end_user, first_target, second_target)

    assert no_address.value.reason == "every push subscription of the recipient is gone (2 revoked)"
    assert (
        PushSubscription.objects.filter(pk__in=[first.pk, second.pk], revoked_at__isnull=False).count() == 2
    )


def test_a_rate_limited_push_service_defers_with_its_retry_after(provider, end_user, httpserver):
    subscription, _, target = subscribe(end_user, httpserver, "/push/busy")
    httpserver.expect_request("/push/busy").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "90"}
    )

    with pytest.raises(RateLimited) as limited:
        send(provider, end_user, target)

    assert limited.value.retry_after == 90
    assert limited.value.reason == "Web push (VAPID) rate limited the send (429): slow down"
    subscription.refresh_from_db()
    assert subscription.revoked_at is None


@pytest.mark.parametrize("status", [500, 503])
def test_a_push_service_error_is_provider_unavailable(provider, end_user, httpserver, status):
    subscription, _, target = subscribe(end_user, httpserver, "/push/down")
    httpserver.expect_request("/push/down").respond_with_data("", status=status)

    with pytest.raises(ProviderUnavailable) as unavailable:
        send(provider, end_user, target)

    assert unavailable.value.reason == f"Web push (VAPID) is unavailable ({status})"
    subscription.refresh_from_db()
    assert subscription.revoked_at is None


def test_an_outage_wins_over_gone_subscriptions_so_the_nudge_is_retried(provider, end_user, httpserver):
    _, _, gone_target = subscribe(end_user, httpserver, "/push/gone")
    _, _, down_target = subscribe(end_user, httpserver, "/push/down")
    httpserver.expect_request("/push/gone").respond_with_data("", status=410)
    httpserver.expect_request("/push/down").respond_with_data("", status=502)

    with pytest.raises(ProviderUnavailable):
        send(provider, end_user, gone_target, down_target)


def test_a_refused_payload_is_rejected(provider, end_user, httpserver):
    _, _, target = subscribe(end_user, httpserver, "/push/picky")
    httpserver.expect_request("/push/picky").respond_with_data("Payload too large", status=413)

    with pytest.raises(Rejected) as rejected:
        send(provider, end_user, target)

    assert rejected.value.reason == "Web push (VAPID) rejected the message (413): Payload too large"


def test_no_subscription_is_no_address(provider, end_user, httpserver):
    with pytest.raises(NoAddress) as no_address:
        send(provider, end_user)

    assert no_address.value.reason == "the recipient has no push subscription"


def test_an_unreadable_vapid_key_is_provider_unavailable(end_user, httpserver):
    _, _, target = subscribe(end_user, httpserver, "/push/abc")
    provider = ProviderWithSecretFactory(
        workspace=end_user.workspace,
        channel="push",
        provider="webpush",
        settings={"vapid_subject": "mailto:push@acme.example.com"},
        secret="not-a-key",
    )

    with pytest.raises(ProviderUnavailable) as unavailable:
        send(provider, end_user, target)

    assert unavailable.value.reason.startswith("Web push (VAPID): the VAPID private key cannot be read")
    assert httpserver.log == []


def test_revoking_is_scoped_to_the_workspace_and_done_once(end_user):
    subscription = PushSubscriptionFactory(end_user=end_user)

    assert not push_subscription_revoke(
        workspace_id=end_user.workspace_id + 1, subscription_id=subscription.pk
    )
    assert push_subscription_revoke(workspace_id=end_user.workspace_id, subscription_id=subscription.pk)
    assert not push_subscription_revoke(workspace_id=end_user.workspace_id, subscription_id=subscription.pk)
