"""The Twilio gateway against a local server answering as Twilio's Messages API does."""

import base64
import socket
import time

import pytest
from werkzeug import Response

from nudges.gateways import gateway_for
from nudges.gateways.base import AnswerLost, NoAddress, ProviderUnavailable, RateLimited, Rejected
from nudges.gateways.sms import TwilioGateway
from tests.factories import CANARY_FIRST_NAME, CANARY_PHONE, WorkspaceFactory
from tests.nudges.factories import ProviderWithSecretFactory
from tests.nudges.providers import message_for, recipient_for, twilio_error, twilio_message

pytestmark = pytest.mark.django_db

ACCOUNT = "AC0123456789abcdef0123456789abcdef"
MESSAGES_PATH = f"/2010-04-01/Accounts/{ACCOUNT}/Messages.json"


@pytest.fixture
def twilio(httpserver):
    def make(**settings):
        return ProviderWithSecretFactory(
            workspace=WorkspaceFactory(),
            channel="sms",
            provider="twilio",
            settings={
                "account_sid": ACCOUNT,
                "from_number": "+15005550006",
                "api_url": httpserver.url_for("/"),
                **settings,
            },
            secret="twilio-auth-token",
        )

    return make


def send(provider, **message_fields):
    message = message_for(channel="sms", **message_fields)
    return TwilioGateway().send(provider=provider, message=message, recipient=recipient_for())


def test_the_registry_gives_the_twilio_gateway():
    assert isinstance(gateway_for("twilio"), TwilioGateway)
    with pytest.raises(LookupError):
        gateway_for("carrier-pigeon")


def test_a_send_posts_the_documented_form_and_returns_the_message_sid(twilio, httpserver):
    httpserver.expect_request(MESSAGES_PATH, method="POST").respond_with_json(twilio_message(), status=201)
    provider = twilio()

    result = send(provider, status_callback_url="https://onboarding.example.com/webhooks/twilio/4242")

    assert result.provider_message_id == "SM0123456789abcdef0123456789abcdef"
    assert result.detail == {"status": "queued", "segments": "1"}
    [(request, _)] = httpserver.log
    assert request.form.to_dict() == {
        "To": CANARY_PHONE,
        "From": "+15005550006",
        "Body": f"Hi {CANARY_FIRST_NAME}, you are 60% through Getting started. "
        "Continue: https://app.example.com/t/signed-link",
        "StatusCallback": "https://onboarding.example.com/webhooks/twilio/4242",
    }
    expected = base64.b64encode(f"{ACCOUNT}:twilio-auth-token".encode()).decode()
    assert request.headers["Authorization"] == f"Basic {expected}"


def test_a_messaging_service_replaces_the_from_number(twilio, httpserver):
    httpserver.expect_request(MESSAGES_PATH, method="POST").respond_with_json(twilio_message(), status=201)

    send(twilio(from_number="", messaging_service_sid="MG0123"))

    [(request, _)] = httpserver.log
    assert request.form["MessagingServiceSid"] == "MG0123"
    assert "From" not in request.form
    assert "StatusCallback" not in request.form


def test_an_invalid_number_is_rejected_without_quoting_it(twilio, httpserver):
    body = twilio_error(
        code=21211, message=f"The 'To' number {CANARY_PHONE} is not a valid phone number.", status=400
    )
    httpserver.expect_request(MESSAGES_PATH).respond_with_json(body, status=400)

    with pytest.raises(Rejected) as rejected:
        send(twilio())

    assert rejected.value.reason == (
        "Twilio rejected the message (400): error 21211, the 'To' number is not a valid phone number"
    )
    assert rejected.value.status_code == 400


def test_an_unknown_error_quotes_twilio_with_the_contact_data_removed(twilio, httpserver):
    body = twilio_error(code=21999, message=f"Cannot deliver to {CANARY_PHONE} today.", status=400)
    httpserver.expect_request(MESSAGES_PATH).respond_with_json(body, status=400)

    with pytest.raises(Rejected) as rejected:
        send(twilio())

    assert (
        rejected.value.reason
        == "Twilio rejected the message (400): error 21999, Cannot deliver to [PHONE] today."
    )


def test_too_many_requests_is_rate_limited_with_the_retry_after(twilio, httpserver):
    body = twilio_error(code=20429, message="Too Many Requests", status=429)
    httpserver.expect_request(MESSAGES_PATH).respond_with_json(
        body, status=429, headers={"Retry-After": "30"}
    )

    with pytest.raises(RateLimited) as limited:
        send(twilio())

    assert limited.value.retry_after == 30
    assert limited.value.reason == "Twilio rate limited the send (429): error 20429, too many requests"


@pytest.mark.parametrize("status", [500, 503])
def test_a_server_error_is_provider_unavailable(twilio, httpserver, status):
    httpserver.expect_request(MESSAGES_PATH).respond_with_data("upstream error", status=status)

    with pytest.raises(ProviderUnavailable) as unavailable:
        send(twilio())

    assert unavailable.value.reason == f"Twilio is unavailable ({status})"
    assert unavailable.value.status_code == status


def test_refused_credentials_count_against_the_provider_not_the_message(twilio, httpserver):
    body = twilio_error(code=20003, message="Authenticate", status=401)
    httpserver.expect_request(MESSAGES_PATH).respond_with_json(body, status=401)

    with pytest.raises(ProviderUnavailable) as unavailable:
        send(twilio())

    assert (
        unavailable.value.reason == "Twilio refused the credentials (401): error 20003, authentication failed"
    )


def test_no_phone_number_is_no_address_and_nothing_is_sent(twilio, httpserver):
    with pytest.raises(NoAddress) as no_address:
        TwilioGateway().send(
            provider=twilio(), message=message_for(channel="sms"), recipient=recipient_for(phone="")
        )

    assert no_address.value.reason == "the recipient has no phone number"
    assert httpserver.log == []


def test_a_missing_auth_token_is_provider_unavailable(httpserver):
    provider = ProviderWithSecretFactory(
        channel="sms", provider="twilio", settings={"account_sid": ACCOUNT, "from_number": "+1500"}, secret=""
    )

    with pytest.raises(ProviderUnavailable) as unavailable:
        send(provider)

    assert (
        unavailable.value.reason == f"Twilio: its key (workspace secret '{provider.secret_name}') is not set"
    )


def test_a_refused_connection_is_provider_unavailable(twilio):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]

    with pytest.raises(ProviderUnavailable) as unavailable:
        send(twilio(api_url=f"http://127.0.0.1:{port}"))

    assert unavailable.value.reason == "Twilio could not be reached (ConnectError)"


def test_a_slow_answer_is_an_answer_lost_the_sms_may_have_been_accepted(twilio, httpserver, settings):
    settings.NUDGE_PROVIDER_TIMEOUT_SECONDS = 0.2

    def slow(request):
        time.sleep(0.5)
        return Response("{}", status=201)

    httpserver.expect_request(MESSAGES_PATH).respond_with_handler(slow)

    with pytest.raises(AnswerLost) as unavailable:
        send(twilio())

    assert isinstance(unavailable.value, ProviderUnavailable)
    assert unavailable.value.reason == "Twilio did not answer in time (ReadTimeout)"
    deadline = time.monotonic() + 5
    while not httpserver.log and time.monotonic() < deadline:  # let the slow answer finish here
        time.sleep(0.02)
