"""The email gateway: SendGrid and Mailgun (anymail) and Amazon SES (anymail over boto3) against
a local server answering as their APIs do, and SMTP against a local SMTP server."""

import base64
import json
from email import message_from_bytes, policy

import pytest

from nudges.gateways import gateway_for
from nudges.gateways.base import NoAddress, ProviderUnavailable, RateLimited, Rejected
from nudges.gateways.email import EmailGateway
from tests.factories import CANARY_EMAIL, CANARY_FIRST_NAME, CANARY_NAME, WorkspaceFactory
from tests.nudges.factories import ProviderWithSecretFactory
from tests.nudges.providers import (
    MAILGUN_QUEUED,
    SENDGRID_BAD_REQUEST,
    SENDGRID_TOO_MANY,
    SENDGRID_UNAUTHORIZED,
    SmtpServer,
    message_for,
    recipient_for,
)

pytestmark = pytest.mark.django_db

HEADERS = {
    "List-Unsubscribe": "<https://onboarding.example.com/u/signed>",
    "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
}
HTML = "<p>Hi {{ first_name }}, you are 60% through.</p><img src='https://onboarding.example.com/o/p.gif'>"
TEXT = (
    f"Hi {CANARY_FIRST_NAME}, you are 60% through Getting started.\n\n"
    "Continue: https://app.example.com/t/signed-link"
)
SENDER = {"from_email": "hello@acme.example.com", "from_name": "Acme", "reply_to": "help@acme.example.com"}


def email_provider(provider: str, *, key: str = "api-key", **settings):
    return ProviderWithSecretFactory(
        workspace=WorkspaceFactory(),
        channel="email",
        provider=provider,
        settings={**SENDER, **settings},
        secret=key,
    )


def send(provider, recipient=None, **message_fields):
    fields = {"html": HTML, "headers": HEADERS, **message_fields}
    return EmailGateway().send(
        provider=provider, message=message_for(**fields), recipient=recipient or recipient_for()
    )


def text_of(mime) -> str:
    return mime.get_body(("plain",)).get_content().replace("\r\n", "\n").strip()


def test_every_email_provider_code_has_the_email_gateway():
    for code in ("sendgrid", "mailgun", "amazon_ses", "smtp"):
        assert isinstance(gateway_for(code), EmailGateway)


# --- SendGrid -------------------------------------------------------------------------------------


def sendgrid(httpserver, **settings):
    return email_provider("sendgrid", key="SG.key", api_url=httpserver.url_for("/v3"), **settings)


def test_sendgrid_gets_the_message_with_its_html_headers_and_nudge_id(httpserver):
    httpserver.expect_request("/v3/mail/send", method="POST").respond_with_data("", status=202)

    result = send(sendgrid(httpserver))

    [(request, _)] = httpserver.log
    assert request.headers["Authorization"] == "Bearer SG.key"
    sent = request.get_json()
    assert sent["from"] == {"email": "hello@acme.example.com", "name": "Acme"}
    assert sent["reply_to_list"] == [{"email": "help@acme.example.com"}]
    assert sent["subject"] == "Finish connecting your data"
    personalization = sent["personalizations"][0]
    assert personalization["to"] == [{"email": CANARY_EMAIL, "name": CANARY_NAME}]
    assert sent["content"] == [
        {"type": "text/plain", "value": TEXT},
        {
            "type": "text/html",
            "value": f"<p>Hi {CANARY_FIRST_NAME}, you are 60% through.</p>"
            "<img src='https://onboarding.example.com/o/p.gif'>",
        },
    ]
    assert sent["headers"] == HEADERS
    assert sent["custom_args"] == {"nudge_id": "4242", "idempotency_key": "7:4242:step:connect-data"}
    # The id webhooks are matched by: anymail's, sent along as a custom arg.
    assert result.provider_message_id == personalization["custom_args"]["anymail_id"]


def test_sendgrid_fills_html_contact_variables_escaped(httpserver):
    httpserver.expect_request("/v3/mail/send").respond_with_data("", status=202)

    send(sendgrid(httpserver), recipient=recipient_for(first_name="<b>Ann</b>"))

    [(request, _)] = httpserver.log
    html = request.get_json()["content"][1]["value"]
    assert html.startswith("<p>Hi &lt;b&gt;Ann&lt;/b&gt;, you are")


def test_sendgrid_gets_names_with_accents_and_commas_as_written(httpserver):
    httpserver.expect_request("/v3/mail/send").respond_with_data("", status=202)

    send(sendgrid(httpserver, from_name="Acme, Inc."), recipient=recipient_for(name="Zoë O'Brien"))

    [(request, _)] = httpserver.log
    sent = request.get_json()
    assert sent["from"] == {"email": "hello@acme.example.com", "name": "Acme, Inc."}
    assert sent["personalizations"][0]["to"] == [{"email": CANARY_EMAIL, "name": "Zoë O'Brien"}]


def test_sendgrid_bad_request_is_rejected_with_its_error(httpserver):
    httpserver.expect_request("/v3/mail/send").respond_with_json(SENDGRID_BAD_REQUEST, status=400)

    with pytest.raises(Rejected) as rejected:
        send(sendgrid(httpserver))

    assert rejected.value.reason == (
        "SendGrid rejected the message (400): Does not contain a valid address. "
        "(personalizations.0.to.0.email)"
    )


def test_sendgrid_error_quoting_the_address_has_it_removed(httpserver):
    body = {"errors": [{"message": f"Bounced address {CANARY_EMAIL} is blocked", "field": None}]}
    httpserver.expect_request("/v3/mail/send").respond_with_json(body, status=400)

    with pytest.raises(Rejected) as rejected:
        send(sendgrid(httpserver))

    assert rejected.value.reason == "SendGrid rejected the message (400): Bounced address [EMAIL] is blocked"


def test_sendgrid_429_is_rate_limited_until_its_reset(httpserver):
    headers = {"Retry-After": "12"}
    httpserver.expect_request("/v3/mail/send").respond_with_json(
        SENDGRID_TOO_MANY, status=429, headers=headers
    )

    with pytest.raises(RateLimited) as limited:
        send(sendgrid(httpserver))

    assert limited.value.retry_after == 12
    assert limited.value.reason == "SendGrid rate limited the send (429): too many requests"


@pytest.mark.parametrize("status", [500, 503])
def test_sendgrid_server_error_is_provider_unavailable(httpserver, status):
    httpserver.expect_request("/v3/mail/send").respond_with_data("Service Unavailable", status=status)

    with pytest.raises(ProviderUnavailable) as unavailable:
        send(sendgrid(httpserver))

    assert unavailable.value.reason == f"SendGrid is unavailable ({status}): Service Unavailable"


def test_sendgrid_revoked_key_is_provider_unavailable(httpserver):
    httpserver.expect_request("/v3/mail/send").respond_with_json(SENDGRID_UNAUTHORIZED, status=401)

    with pytest.raises(ProviderUnavailable) as unavailable:
        send(sendgrid(httpserver))

    assert unavailable.value.reason == (
        "SendGrid refused the credentials (401): "
        "The provided authorization grant is invalid, expired, or revoked"
    )


def test_sendgrid_unreachable_is_provider_unavailable():
    provider = email_provider("sendgrid", api_url="http://127.0.0.1:9/v3")

    with pytest.raises(ProviderUnavailable) as unavailable:
        send(provider)

    assert unavailable.value.reason == "SendGrid could not be reached"


def test_no_email_address_is_no_address(httpserver):
    with pytest.raises(NoAddress) as no_address:
        send(sendgrid(httpserver), recipient=recipient_for(email=""))

    assert no_address.value.reason == "the recipient has no email address"
    assert httpserver.log == []


# --- Mailgun --------------------------------------------------------------------------------------


def test_mailgun_gets_the_message_and_returns_its_id(httpserver):
    httpserver.expect_request("/v3/mg.acme.example.com/messages", method="POST").respond_with_json(
        MAILGUN_QUEUED
    )
    provider = email_provider(
        "mailgun",
        key="key-mailgun",
        api_url=httpserver.url_for("/v3"),
        sender_domain="mg.acme.example.com",
    )

    result = send(provider)

    assert result.provider_message_id == MAILGUN_QUEUED["id"]
    [(request, _)] = httpserver.log
    assert request.headers["Authorization"] == "Basic " + base64.b64encode(b"api:key-mailgun").decode()
    form = request.form
    assert form["to"] == f"{CANARY_NAME} <{CANARY_EMAIL}>"
    assert form["from"] == "Acme <hello@acme.example.com>"
    assert form["text"] == TEXT
    assert form["html"].startswith(f"<p>Hi {CANARY_FIRST_NAME}")
    assert form["h:List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert form["v:nudge_id"] == "4242"


def test_mailgun_bad_request_is_rejected(httpserver):
    httpserver.expect_request("/v3/mg.acme.example.com/messages").respond_with_json(
        {"message": "'to' parameter is not a valid address. please check documentation"}, status=400
    )
    provider = email_provider(
        "mailgun", api_url=httpserver.url_for("/v3"), sender_domain="mg.acme.example.com"
    )

    with pytest.raises(Rejected) as rejected:
        send(provider)

    assert rejected.value.reason == (
        "Mailgun rejected the message (400): "
        "'to' parameter is not a valid address. please check documentation"
    )


# --- Amazon SES -----------------------------------------------------------------------------------


def ses(httpserver):
    return email_provider(
        "amazon_ses",
        key="aws-secret-access-key",
        api_url=httpserver.url_for("/"),
        aws_access_key_id="AKIAEXAMPLE",
        aws_region="eu-west-1",
    )


def test_ses_gets_the_raw_message_signed_for_its_region_and_returns_the_message_id(httpserver):
    httpserver.expect_request("/v2/email/outbound-emails", method="POST").respond_with_json(
        {"MessageId": "0102018c-ses-message-id"}
    )

    result = send(ses(httpserver))

    assert result.provider_message_id == "0102018c-ses-message-id"
    [(request, _)] = httpserver.log
    assert "Credential=AKIAEXAMPLE/" in request.headers["Authorization"]
    assert "/eu-west-1/ses/aws4_request" in request.headers["Authorization"]
    raw = base64.b64decode(request.get_json()["Content"]["Raw"]["Data"])
    mime = message_from_bytes(raw, policy=policy.default)
    assert mime["To"] == f"{CANARY_NAME} <{CANARY_EMAIL}>"
    assert mime["List-Unsubscribe"] == HEADERS["List-Unsubscribe"]
    assert json.loads(mime["X-Metadata"])["nudge_id"] == "4242"
    assert text_of(mime) == TEXT


def test_ses_rejection_and_throttling(httpserver):
    httpserver.expect_oneshot_request("/v2/email/outbound-emails").respond_with_json(
        {"message": "Email address is not verified."},
        status=400,
        headers={"x-amzn-ErrorType": "MessageRejected"},
    )
    httpserver.expect_oneshot_request("/v2/email/outbound-emails").respond_with_json(
        {"message": "Maximum sending rate exceeded."},
        status=429,
        headers={"x-amzn-ErrorType": "TooManyRequestsException"},
    )
    provider = ses(httpserver)

    with pytest.raises(Rejected) as rejected:
        send(provider)
    with pytest.raises(RateLimited) as limited:
        send(provider)

    assert rejected.value.reason == (
        "Amazon SES rejected the message (400): MessageRejected, Email address is not verified."
    )
    assert limited.value.reason == (
        "Amazon SES rate limited the send: TooManyRequestsException, Maximum sending rate exceeded."
    )


def test_ses_server_error_is_provider_unavailable(httpserver):
    httpserver.expect_request("/v2/email/outbound-emails").respond_with_json(
        {"message": "Internal failure"}, status=500, headers={"x-amzn-ErrorType": "InternalFailure"}
    )

    with pytest.raises(ProviderUnavailable) as unavailable:
        send(ses(httpserver))

    assert unavailable.value.reason == "Amazon SES is unavailable (500): InternalFailure, Internal failure"
    assert len(httpserver.log) == 1  # boto3's own retries are off: RQ and the breaker decide


# --- SMTP -----------------------------------------------------------------------------------------


@pytest.fixture
def smtp():
    with SmtpServer() as server:
        yield server


def smtp_provider(smtp, *, password: str | None = None):
    username, accepted = smtp.credentials
    return email_provider(
        "smtp", key=password or accepted, host="127.0.0.1", port=smtp.port, username=username
    )


def test_smtp_delivers_the_message_with_a_stable_message_id(smtp):
    provider = smtp_provider(smtp)

    first = send(provider)
    again = send(provider)

    assert smtp.logins == ["mailer", "mailer"]
    assert smtp.messages[0]["to"] == [f"<{CANARY_EMAIL}>"]
    mime = smtp.last
    assert mime["Subject"] == "Finish connecting your data"
    assert mime["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert mime["X-Nudge-Id"] == "4242"
    assert text_of(mime) == TEXT
    assert mime.get_body(("html",)).get_content().startswith(f"<p>Hi {CANARY_FIRST_NAME}")
    assert first.provider_message_id == mime["Message-ID"] == again.provider_message_id
    assert first.provider_message_id.startswith("<nudge.4242.")


def test_smtp_refused_recipient_is_rejected_without_the_address(smtp):
    smtp.replies["RCPT"] = (550, f"5.1.1 <{CANARY_EMAIL}>: no such user")

    with pytest.raises(Rejected) as rejected:
        send(smtp_provider(smtp))

    assert rejected.value.reason == "SMTP refused the recipient (550)"


def test_smtp_deferral_and_refused_login_are_provider_unavailable(smtp):
    smtp.replies["DATA"] = (451, "4.3.0 try again later")
    with pytest.raises(ProviderUnavailable) as deferred:
        send(smtp_provider(smtp))

    smtp.replies.clear()
    with pytest.raises(ProviderUnavailable) as refused:
        send(smtp_provider(smtp, password="wrong-password"))

    assert deferred.value.reason == "SMTP deferred the message (451)"
    assert refused.value.reason == "SMTP refused the login (535)"
    assert smtp.messages == []


def test_smtp_server_down_is_provider_unavailable():
    provider = email_provider("smtp", host="127.0.0.1", port=9)

    with pytest.raises(ProviderUnavailable) as unavailable:
        send(provider)

    assert unavailable.value.reason == "SMTP could not be reached (ConnectionRefusedError)"
