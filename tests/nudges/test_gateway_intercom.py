"""The Intercom gateway against a local server answering as Intercom's messages API does."""

import time

import pytest

from nudges.gateways import gateway_for
from nudges.gateways.base import NoAddress, ProviderUnavailable, RateLimited, Rejected
from nudges.gateways.intercom import IntercomGateway
from tests.factories import CANARY_EMAIL, CANARY_FIRST_NAME, WorkspaceFactory
from tests.nudges.factories import ProviderWithSecretFactory
from tests.nudges.providers import intercom_error, message_for, recipient_for

pytestmark = pytest.mark.django_db

CREATED = {
    "type": "user_message",
    "id": "403918316",
    "created_at": 1719492969,
    "body": "<p>Hi</p>",
    "message_type": "inapp",
    "conversation_id": "476",
}


@pytest.fixture
def intercom(httpserver):
    def make(**settings):
        return ProviderWithSecretFactory(
            workspace=WorkspaceFactory(),
            channel="intercom",
            provider="intercom",
            settings={"admin_id": "394051", "api_url": httpserver.url_for("/"), **settings},
            secret="intercom-access-token",
        )

    return make


def send(provider, recipient=None):
    message = message_for(channel="intercom", body="Hi {{ first_name }},\n\nyou are 60% <there>.")
    return IntercomGateway().send(provider=provider, message=message, recipient=recipient or recipient_for())


def test_the_registry_gives_the_intercom_gateway():
    assert isinstance(gateway_for("intercom"), IntercomGateway)


def test_an_in_app_message_goes_to_the_user_by_their_product_id(intercom, httpserver):
    httpserver.expect_request("/messages", method="POST").respond_with_json(CREATED)

    result = send(intercom())

    assert result.provider_message_id == "403918316"
    assert result.detail == {"message_type": "inapp"}
    [(request, _)] = httpserver.log
    assert request.headers["Authorization"] == "Bearer intercom-access-token"
    assert request.headers["Intercom-Version"] == "2.11"
    assert request.get_json() == {
        "message_type": "in_app",
        "body": f"<p>Hi {CANARY_FIRST_NAME},</p><p>you are 60% &lt;there&gt;.</p>"
        '<p><a href="https://app.example.com/t/signed-link">Continue</a></p>',
        "template": "plain",
        "from": {"type": "admin", "id": "394051"},
        "to": {"type": "user", "user_id": "user-77"},
    }
    assert CANARY_EMAIL not in request.get_data(as_text=True)


def test_an_email_message_carries_its_subject(intercom, httpserver):
    httpserver.expect_request("/messages").respond_with_json({**CREATED, "message_type": "email"})

    send(intercom(message_type="email", api_version="2.10"))

    [(request, _)] = httpserver.log
    assert request.get_json()["message_type"] == "email"
    assert request.get_json()["subject"] == "Finish connecting your data"
    assert request.headers["Intercom-Version"] == "2.10"


def test_an_unknown_user_is_rejected(intercom, httpserver):
    body = intercom_error(code="not_found", message="User Not Found")
    httpserver.expect_request("/messages").respond_with_json(body, status=404)

    with pytest.raises(Rejected) as rejected:
        send(intercom())

    assert rejected.value.reason == "Intercom rejected the message (404): not_found, User Not Found"


def test_a_bad_request_is_rejected(intercom, httpserver):
    body = intercom_error(code="parameter_invalid", message="Admin not found")
    httpserver.expect_request("/messages").respond_with_json(body, status=400)

    with pytest.raises(Rejected) as rejected:
        send(intercom())

    assert rejected.value.reason == "Intercom rejected the message (400): parameter_invalid, Admin not found"


def test_an_invalid_token_is_provider_unavailable(intercom, httpserver):
    body = intercom_error(code="unauthorized", message="Access Token Invalid")
    httpserver.expect_request("/messages").respond_with_json(body, status=401)

    with pytest.raises(ProviderUnavailable) as unavailable:
        send(intercom())

    assert (
        unavailable.value.reason
        == "Intercom refused the credentials (401): unauthorized, Access Token Invalid"
    )


def test_rate_limited_until_the_reset_intercom_gives(intercom, httpserver):
    reset = int(time.time()) + 10
    body = intercom_error(code="rate_limit_exceeded", message="Exceeded rate limit")
    httpserver.expect_request("/messages").respond_with_json(
        body, status=429, headers={"X-RateLimit-Reset": str(reset)}
    )

    with pytest.raises(RateLimited) as limited:
        send(intercom())

    assert 8 <= limited.value.retry_after <= 10
    assert (
        limited.value.reason
        == "Intercom rate limited the send (429): rate_limit_exceeded, Exceeded rate limit"
    )


@pytest.mark.parametrize("status", [500, 503])
def test_a_server_error_is_provider_unavailable(intercom, httpserver, status):
    httpserver.expect_request("/messages").respond_with_json(
        intercom_error(code="server_error", message="Server Error"), status=status
    )

    with pytest.raises(ProviderUnavailable) as unavailable:
        send(intercom())

    assert unavailable.value.reason == f"Intercom is unavailable ({status}): server_error, Server Error"


def test_a_user_without_a_product_id_is_no_address(intercom, httpserver):
    with pytest.raises(NoAddress):
        send(intercom(), recipient=recipient_for(external_id=""))

    assert httpserver.log == []
