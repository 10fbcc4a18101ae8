"""Twilio's SMS status callback: real X-Twilio-Signature values, statuses, error codes, refusals."""

import base64
import hashlib
import hmac
from urllib.parse import urlencode

import pytest

from guardrails.models import Suppression
from guardrails.policy import subjects
from guardrails.secrets.services import workspace_secret_set
from nudges.delivery.webhooks import twilio_status_callback_url
from nudges.models import Nudge, NudgeEvent
from tests.factories import CANARY_PHONE, WorkspaceFactory
from tests.nudges.factories import ChannelProviderFactory, NudgeFactory

pytestmark = pytest.mark.django_db

AUTH_TOKEN = "twilio-auth-token-0123456789abcdef"
SID = "SM0123456789abcdef0123456789abcdef"


@pytest.fixture
def workspace():
    workspace = WorkspaceFactory()
    ChannelProviderFactory(
        workspace=workspace,
        channel="sms",
        provider="twilio",
        secret_name="twilio_auth_token",
        settings={"account_sid": "AC123"},
    )
    workspace_secret_set(workspace=workspace, name="twilio_auth_token", value=AUTH_TOKEN)
    return workspace


@pytest.fixture
def nudge(workspace):
    return NudgeFactory(trigger__workspace=workspace, channel="sms", provider_message_id=SID)


def _signature(url: str, params: dict[str, str], token: str = AUTH_TOKEN) -> str:
    """Twilio's documented algorithm, written out independently of the code under test."""
    data = url
    for name in sorted(params):
        data += name + params[name]
    return base64.b64encode(hmac.new(token.encode(), data.encode("utf-8"), hashlib.sha1).digest()).decode()


def _params(status: str, **extra) -> dict[str, str]:
    return {
        "MessageSid": SID,
        "SmsSid": SID,
        "AccountSid": "AC123",
        "MessageStatus": status,
        "SmsStatus": status,
        "To": CANARY_PHONE,
        "From": "+15005550006",
        "ApiVersion": "2010-04-01",
        **extra,
    }


def _post_form(client, workspace, params, **kwargs):
    """As Twilio posts: application/x-www-form-urlencoded."""
    url = kwargs.pop("url", None) or twilio_status_callback_url(workspace=workspace)
    signature = kwargs.pop("signature", None)
    headers = {}
    if signature is not False:
        headers["HTTP_X_TWILIO_SIGNATURE"] = signature or _signature(url, params)
    return client.generic(
        "POST",
        f"/webhooks/twilio/{workspace.slug}",
        urlencode(params),
        content_type="application/x-www-form-urlencoded",
        **headers,
    )


def _state():
    return (
        list(Nudge.objects.values_list("pk", "status", "last_error").order_by("pk")),
        NudgeEvent.objects.count(),
        Suppression.objects.count(),
    )


def test_the_status_callback_url_is_per_workspace(workspace, settings):
    assert twilio_status_callback_url(workspace=workspace) == (
        f"{settings.PUBLIC_BASE_URL}/webhooks/twilio/{workspace.slug}"
    )


def test_delivered_moves_the_nudge_to_delivered(api_client, workspace, nudge):
    response = _post_form(api_client, workspace, _params("delivered"))

    assert response.status_code == 200
    assert response.json()["applied"] == 1
    nudge.refresh_from_db()
    assert nudge.status == "delivered"
    assert nudge.events.get(source="twilio").detail == {"event": "delivered"}


@pytest.mark.parametrize("code", ["30005", "30006"])
def test_an_unknown_or_unreachable_number_fails_the_nudge_and_suppresses_the_number(
    api_client, workspace, nudge, code
):
    response = _post_form(api_client, workspace, _params("undelivered", ErrorCode=code))

    assert response.json()["suppressed"] == 1
    nudge.refresh_from_db()
    assert (nudge.status, nudge.last_error) == ("failed", f"Twilio error {code}: undelivered")
    assert nudge.events.get(source="twilio").detail == {"event": "undelivered", "error_code": code}
    [suppression] = Suppression.objects.all()
    assert (suppression.channel, suppression.reason) == ("sms", "hard_bounce")
    assert suppression.subject_digest == subjects.subject_digest(workspace, subjects.PHONE, "+1 415 555 0173")


def test_a_switched_off_handset_fails_the_nudge_without_suppressing_the_number(api_client, workspace, nudge):
    _post_form(api_client, workspace, _params("undelivered", ErrorCode="30003"))

    nudge.refresh_from_db()
    assert nudge.status == "failed"
    assert not Suppression.objects.exists()


def test_a_late_sent_after_delivered_is_recorded_and_the_nudge_stays_delivered(api_client, workspace, nudge):
    _post_form(api_client, workspace, _params("delivered"))
    _post_form(api_client, workspace, _params("sent"))

    nudge.refresh_from_db()
    assert nudge.status == "delivered"
    assert list(nudge.events.filter(source="twilio").values_list("status", flat=True)) == [
        "delivered",
        "sent",
    ]


def test_intermediate_statuses_and_unknown_messages_are_accepted_and_ignored(api_client, workspace, nudge):
    sending = _post_form(api_client, workspace, _params("sending"))
    unknown = _post_form(api_client, workspace, {**_params("delivered"), "MessageSid": "SMunknown"})

    assert (sending.status_code, sending.json()["unhandled"]) == (200, 1)
    assert (unknown.status_code, unknown.json()["unmatched"]) == (200, 1)
    assert not nudge.events.filter(source="twilio").exists()


def test_a_nudge_of_another_workspace_with_the_same_sid_is_untouched(api_client, workspace, nudge):
    other = NudgeFactory(channel="sms", provider_message_id="SMother")

    response = _post_form(api_client, workspace, {**_params("delivered"), "MessageSid": "SMother"})

    assert response.json()["unmatched"] == 1
    other.refresh_from_db()
    assert other.status == "sent"


@pytest.mark.parametrize("tamper", ["missing", "wrong token", "wrong url", "params changed", "garbage"])
def test_a_bad_signature_is_refused_and_changes_nothing(api_client, workspace, nudge, settings, tamper):
    params = _params("undelivered", ErrorCode="30005")
    url = twilio_status_callback_url(workspace=workspace)
    signature = {
        "missing": False,
        "wrong token": _signature(url, params, token="another-token"),
        "wrong url": _signature(url + "?x=1", params),
        "params changed": _signature(url, {**params, "ErrorCode": "30003"}),
        "garbage": "not-a-signature",
    }[tamper]
    before = _state()

    response = _post_form(api_client, workspace, params, signature=signature)

    assert response.status_code == 403
    assert response.json() == {
        "detail": "The Twilio signature is missing or invalid (check the workspace's webhook key)."
    }
    assert _state() == before


def test_the_url_twilio_called_behind_a_proxy_is_the_public_one(api_client, workspace, nudge, settings):
    settings.PUBLIC_BASE_URL = "https://nudges.example.com"
    params = _params("delivered")

    response = _post_form(
        api_client,
        workspace,
        params,
        signature=_signature(f"https://nudges.example.com/webhooks/twilio/{workspace.slug}", params),
    )

    assert response.status_code == 200
    nudge.refresh_from_db()
    assert nudge.status == "delivered"


def test_an_auth_token_named_in_the_settings_is_used_when_the_secret_is_an_api_key(api_client, nudge):
    workspace = nudge.workspace
    provider = workspace.channel_providers.get()
    provider.settings = {
        **provider.settings,
        "api_key_sid": "SK1",
        "webhook_auth_token_secret": "twilio_token",
    }
    provider.save()
    workspace_secret_set(workspace=workspace, name="twilio_token", value="the-real-auth-token")
    params = _params("delivered")
    url = twilio_status_callback_url(workspace=workspace)

    assert _post_form(api_client, workspace, params).status_code == 403
    response = _post_form(
        api_client, workspace, params, signature=_signature(url, params, "the-real-auth-token")
    )
    assert response.status_code == 200


def test_a_signed_callback_without_sid_or_status_is_a_400(api_client, workspace, nudge):
    response = _post_form(api_client, workspace, {"AccountSid": "AC123", "To": CANARY_PHONE})

    assert response.status_code == 400
    assert response.json() == {"detail": "Expected a Twilio status callback: MessageSid and MessageStatus."}


def test_an_unknown_workspace_gets_the_answer_a_known_one_gets_for_a_bad_signature(api_client, workspace):
    unknown = api_client.post("/webhooks/twilio/nobody", data={"MessageSid": SID})
    known = _post_form(api_client, workspace, _params("delivered"), signature="bad")

    assert (unknown.status_code, unknown.json()) == (known.status_code, known.json())
    assert unknown.status_code == 403


def test_a_replayed_callback_is_acknowledged_and_changes_nothing(api_client, workspace, nudge):
    params = _params("undelivered", ErrorCode="30005")
    first = _post_form(api_client, workspace, params)
    assert (first.json()["applied"], first.json()["suppressed"]) == (1, 1)
    before = _state()

    again = _post_form(api_client, workspace, params)

    assert again.status_code == 200
    assert (again.json()["applied"], again.json()["replayed"]) == (0, 1)
    assert _state() == before
