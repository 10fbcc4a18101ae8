"""SendGrid's Signed Event Webhook: real ECDSA P-256 signatures, every event kind, every refusal."""

import base64
import json
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.db import connection

from guardrails.models import ConsentRecord, Suppression
from guardrails.policy import subjects
from guardrails.secrets.services import workspace_secret_set
from nudges.delivery import webhook_events
from nudges.delivery.webhooks import SENDGRID_KEY_SECRET, sendgrid_webhook_url
from nudges.models import Nudge, NudgeEvent
from tenancy.models import AuditLog
from tests.factories import CANARY_EMAIL, WorkspaceFactory
from tests.nudges.factories import ChannelProviderFactory, NudgeFactory, TemplateVersionFactory

pytestmark = pytest.mark.django_db

SIGNATURE = "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_SIGNATURE"
TIMESTAMP = "HTTP_X_TWILIO_EMAIL_EVENT_WEBHOOK_TIMESTAMP"


def _public_der(private_key) -> str:
    der = private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


@pytest.fixture
def private_key():
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def workspace(private_key):
    workspace = WorkspaceFactory()
    ChannelProviderFactory(workspace=workspace)
    workspace_secret_set(workspace=workspace, name=SENDGRID_KEY_SECRET, value=_public_der(private_key))
    return workspace


@pytest.fixture
def nudge(workspace):
    version = TemplateVersionFactory(template__trigger__workspace=workspace)
    return NudgeFactory(
        trigger=version.template.trigger, template_version=version, provider_message_id="anymail-uuid-1"
    )


def _sign(private_key, body: bytes, timestamp: str) -> str:
    return base64.b64encode(private_key.sign(timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))).decode()


def _post(
    client, workspace, events, private_key=None, *, body: bytes | None = None, timestamp=None, signature=None
):
    body = json.dumps(events).encode() if body is None else body
    timestamp = timestamp or str(int(time.time()))
    headers = {TIMESTAMP: timestamp}
    if signature is None and private_key is not None:
        signature = _sign(private_key, body, timestamp)
    if signature is not None:
        headers[SIGNATURE] = signature
    return client.post(
        f"/webhooks/sendgrid/{workspace.slug}", data=body, content_type="application/json", **headers
    )


def _event(nudge, name, **fields):
    return {
        "email": CANARY_EMAIL,
        "timestamp": int(time.time()),
        "event": name,
        "sg_event_id": f"event-{name}",
        "sg_message_id": "sendgrid-id.filter0001.1.2",
        "nudge_id": str(nudge.pk),
        **fields,
    }


def _counts(**counts):
    return {
        "received": 0,
        "applied": 0,
        "unmatched": 0,
        "unhandled": 0,
        "invalid": 0,
        "suppressed": 0,
        "replayed": 0,
        **counts,
    }


def _state():
    return (
        list(Nudge.objects.values_list("pk", "status", "clicked_at", "failed_at").order_by("pk")),
        NudgeEvent.objects.count(),
        Suppression.objects.count(),
        ConsentRecord.objects.count(),
    )


def test_the_url_is_per_workspace(workspace, settings):
    assert sendgrid_webhook_url(workspace=workspace) == (
        f"{settings.PUBLIC_BASE_URL}/webhooks/sendgrid/{workspace.slug}"
    )


def test_delivered_open_and_click_move_the_nudge_and_reward_its_variant_once(
    api_client, workspace, nudge, private_key
):
    events = [
        _event(nudge, "processed"),
        _event(nudge, "delivered"),
        _event(nudge, "open"),
        _event(nudge, "click", url="https://app.example.com/setup"),
    ]

    response = _post(api_client, workspace, events, private_key)

    assert response.status_code == 200
    assert response.json() == _counts(received=4, applied=4)
    nudge.refresh_from_db()
    assert nudge.status == "clicked"
    assert nudge.delivered_at is not None and nudge.opened_at is not None and nudge.clicked_at is not None
    trail = list(nudge.events.filter(source="sendgrid").values_list("status", "detail"))
    assert trail == [
        ("sent", {"event": "processed", "sg_event_id": "event-processed"}),
        ("delivered", {"event": "delivered", "sg_event_id": "event-delivered"}),
        ("opened", {"event": "open", "sg_event_id": "event-open"}),
        ("clicked", {"event": "click", "sg_event_id": "event-click"}),
    ]
    nudge.template_version.refresh_from_db()
    assert nudge.template_version.rewards == 1

    _post(api_client, workspace, [_event(nudge, "click")], private_key)

    nudge.template_version.refresh_from_db()
    assert nudge.template_version.rewards == 1


def test_an_open_after_the_click_is_recorded_and_the_nudge_stays_clicked(
    api_client, workspace, nudge, private_key
):
    _post(api_client, workspace, [_event(nudge, "click")], private_key)

    response = _post(api_client, workspace, [_event(nudge, "open"), _event(nudge, "delivered")], private_key)

    assert response.status_code == 200
    nudge.refresh_from_db()
    assert nudge.status == "clicked"
    assert list(nudge.events.filter(source="sendgrid").values_list("status", flat=True)) == [
        "clicked",
        "opened",
        "delivered",
    ]


@pytest.mark.parametrize(
    "ids",
    [{"anymail_id": "anymail-uuid-1"}, {"sg_message_id": "anymail-uuid-1.filter0001.16648.5515E0B88.0"}],
    ids=["anymail_id", "sg_message_id prefix"],
)
def test_events_without_the_nudge_id_match_by_provider_message_id(
    api_client, workspace, nudge, private_key, ids
):
    event = {"email": CANARY_EMAIL, "timestamp": int(time.time()), "event": "delivered", **ids}

    response = _post(api_client, workspace, [event], private_key)

    assert response.json()["applied"] == 1
    nudge.refresh_from_db()
    assert nudge.status == "delivered"


def test_a_hard_bounce_bounces_the_nudge_and_suppresses_the_address_on_email(
    api_client, workspace, nudge, private_key
):
    event = _event(nudge, "bounce", type="bounce", status="5.1.1", reason=f"550 <{CANARY_EMAIL}> unknown")

    response = _post(api_client, workspace, [event], private_key)

    assert response.json() == _counts(received=1, suppressed=1, applied=1)
    nudge.refresh_from_db()
    assert (nudge.status, nudge.last_error) == ("bounced", "SendGrid bounce (5.1.1)")
    assert nudge.failed_at is not None
    [suppression] = Suppression.objects.all()
    assert (suppression.workspace, suppression.channel, suppression.reason) == (
        workspace,
        "email",
        "hard_bounce",
    )
    assert suppression.subject_digest == subjects.subject_digest(
        workspace, subjects.EMAIL, CANARY_EMAIL.upper()
    )
    # The bounce's wording quotes the address: it is kept nowhere.
    [bounce] = nudge.events.filter(status="bounced")
    assert bounce.detail == {
        "event": "bounce",
        "sg_event_id": "event-bounce",
        "type": "bounce",
        "status": "5.1.1",
    }
    assert CANARY_EMAIL not in json.dumps(nudge.trace)
    assert AuditLog.objects.filter(action="suppression.created", actor_label="sendgrid webhook").count() == 1

    _post(api_client, workspace, [event], private_key)

    assert Suppression.objects.count() == 1


def test_a_blocked_bounce_bounces_the_nudge_but_keeps_the_address(api_client, workspace, nudge, private_key):
    _post(api_client, workspace, [_event(nudge, "bounce", type="blocked")], private_key)

    nudge.refresh_from_db()
    assert nudge.status == "bounced"
    assert not Suppression.objects.exists()


@pytest.mark.parametrize(
    ("reason", "suppressed_as"),
    [
        ("Bounced Address", "hard_bounce"),
        ("Spam Reporting Address", "spam_complaint"),
        ("Unsubscribed Address", "unsubscribed"),
        ("Invalid SMTPAPI header", None),
    ],
)
def test_a_dropped_message_suppresses_the_address_when_the_address_is_at_fault(
    api_client, workspace, nudge, private_key, reason, suppressed_as
):
    _post(api_client, workspace, [_event(nudge, "dropped", reason=reason)], private_key)

    nudge.refresh_from_db()
    assert nudge.status == "bounced"
    assert list(Suppression.objects.values_list("reason", flat=True)) == (
        [suppressed_as] if suppressed_as else []
    )


def test_a_spam_report_suppresses_the_address_and_leaves_the_status(
    api_client, workspace, nudge, private_key
):
    response = _post(api_client, workspace, [_event(nudge, "spamreport")], private_key)

    assert response.json()["suppressed"] == 1
    nudge.refresh_from_db()
    assert nudge.status == "sent"
    assert Suppression.objects.get().reason == "spam_complaint"
    assert nudge.trace[-1]["message"] == "spam complaint: the email address is suppressed"


@pytest.mark.parametrize("name", ["unsubscribe", "group_unsubscribe"])
def test_an_unsubscribe_withdraws_email_consent_for_the_trigger_purpose(
    api_client, workspace, nudge, private_key, name
):
    _post(api_client, workspace, [_event(nudge, name)], private_key)
    _post(api_client, workspace, [_event(nudge, name)], private_key)

    [record] = ConsentRecord.objects.all()
    assert (record.end_user, record.channel, record.purpose, record.granted, record.source) == (
        nudge.end_user,
        "email",
        "onboarding",
        False,
        "unsubscribe_link",
    )


def test_unknown_nudges_and_other_workspaces_nudges_are_accepted_and_ignored(
    api_client, workspace, nudge, private_key
):
    elsewhere = NudgeFactory(provider_message_id="elsewhere-1")
    events = [
        {"event": "delivered", "nudge_id": "999999999", "email": CANARY_EMAIL},
        {"event": "delivered", "nudge_id": str(elsewhere.pk)},
        {"event": "delivered", "sg_message_id": "elsewhere-1.filter"},
        {"event": "delivered", "nudge_id": "not-a-number"},
        "not an event",
        {"no": "event"},
        _event(nudge, "deferred"),
    ]

    response = _post(api_client, workspace, events, private_key)

    assert response.status_code == 200
    assert response.json() == _counts(received=7, invalid=2, unmatched=4, unhandled=1)
    elsewhere.refresh_from_db()
    assert elsewhere.status == "sent"
    assert not elsewhere.events.exists()


@pytest.mark.parametrize(
    "tamper",
    ["no signature", "other key", "body changed", "timestamp changed", "not base64", "empty"],
)
def test_a_bad_or_missing_signature_is_refused_and_changes_nothing(
    api_client, workspace, nudge, private_key, tamper
):
    events = [_event(nudge, "click"), _event(nudge, "bounce", type="bounce")]
    body = json.dumps(events).encode()
    timestamp = str(int(time.time()))
    signature = {
        "no signature": None,
        "other key": _sign(ec.generate_private_key(ec.SECP256R1()), body, timestamp),
        "body changed": _sign(private_key, body.replace(b"click", b"open"), timestamp),
        "timestamp changed": _sign(private_key, body, str(int(timestamp) - 1)),
        "not base64": "%%%",
        "empty": "",
    }[tamper]
    before = _state()

    response = _post(api_client, workspace, events, body=body, timestamp=timestamp, signature=signature)

    assert response.status_code == 403
    assert response.json() == {
        "detail": "The SendGrid signature is missing or invalid (check the workspace's webhook key)."
    }
    assert _state() == before


def test_a_workspace_without_a_verification_key_refuses_everything(api_client, nudge, private_key):
    bare = WorkspaceFactory()
    ChannelProviderFactory(workspace=bare)

    assert _post(api_client, bare, [_event(nudge, "click")], private_key).status_code == 403


def test_malformed_json_is_a_400_once_signed(api_client, workspace, private_key):
    for body in (b"{not json", b'{"event": "open"}', b"\xff\xfe"):
        response = _post(api_client, workspace, None, private_key, body=body)

        assert response.status_code == 400
        assert response.json()["detail"].startswith(("The body is not JSON", "Expected a JSON list"))


def test_an_unknown_workspace_gets_the_answer_a_known_one_gets_for_a_bad_signature(
    api_client, workspace, private_key
):
    """A 404 beside a 403 told a prober which workspace slugs exist."""
    unknown = api_client.post("/webhooks/sendgrid/nobody", data=b"[]", content_type="application/json")
    known = _post(api_client, workspace, [], signature=None)

    assert (unknown.status_code, unknown.json()) == (known.status_code, known.json())
    assert unknown.status_code == 403


def test_a_replayed_batch_is_acknowledged_and_changes_nothing(api_client, workspace, nudge, private_key):
    events = [_event(nudge, "delivered"), _event(nudge, "bounce", type="bounce")]
    first = _post(api_client, workspace, events, private_key)
    assert first.json() == _counts(received=2, applied=2, suppressed=1)
    before = (_state(), list(AuditLog.objects.values_list("pk", flat=True)))

    # The same signed events again: posted anew by whoever saw them, or retried by SendGrid.
    again = _post(api_client, workspace, events, private_key)

    assert (again.status_code, again.json()) == (200, _counts(received=2, replayed=2))
    assert (_state(), list(AuditLog.objects.values_list("pk", flat=True))) == before


def test_a_replay_within_a_batch_of_new_events_applies_only_the_new_ones(
    api_client, workspace, nudge, private_key
):
    _post(api_client, workspace, [_event(nudge, "delivered")], private_key)

    response = _post(api_client, workspace, [_event(nudge, "delivered"), _event(nudge, "open")], private_key)

    assert response.json() == _counts(received=2, applied=1, replayed=1)
    assert list(nudge.events.filter(source="sendgrid").values_list("status", flat=True)) == [
        "delivered",
        "opened",
    ]


def test_events_without_an_event_id_are_remembered_by_their_content(
    api_client, workspace, nudge, private_key
):
    event = {"email": CANARY_EMAIL, "timestamp": 1764000000, "event": "open", "nudge_id": str(nudge.pk)}

    assert _post(api_client, workspace, [event], private_key).json()["applied"] == 1
    assert _post(api_client, workspace, [event], private_key).json()["replayed"] == 1
    assert nudge.events.filter(source="sendgrid").count() == 1


@pytest.mark.parametrize("age", [25 * 365 * 86400, 601, -601], ids=["25 years", "11 minutes", "future"])
def test_a_signed_timestamp_outside_the_window_is_refused_without_any_setting(
    api_client, workspace, nudge, private_key, age
):
    before = _state()
    timestamp = str(int(time.time()) - age)

    response = _post(api_client, workspace, [_event(nudge, "open")], private_key, timestamp=timestamp)

    assert response.status_code == 403
    assert _state() == before


def test_a_pem_key_of_a_backup_provider_named_in_its_settings_verifies(api_client, workspace, nudge):
    backup_key = ec.generate_private_key(ec.SECP256R1())
    pem = backup_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    workspace_secret_set(workspace=workspace, name="backup_sendgrid_key", value=pem.decode())
    ChannelProviderFactory(
        workspace=workspace, priority=2, settings={"webhook_verification_key_secret": "backup_sendgrid_key"}
    )

    response = _post(api_client, workspace, [_event(nudge, "delivered")], backup_key)

    assert response.status_code == 200
    nudge.refresh_from_db()
    assert nudge.status == "delivered"


def test_a_max_age_refuses_old_signed_timestamps(api_client, workspace, nudge, private_key):
    workspace.channel_providers.update(settings={"webhook_max_age_seconds": 300})
    old = str(int(time.time()) - 301)

    assert (
        _post(api_client, workspace, [_event(nudge, "open")], private_key, timestamp=old).status_code == 403
    )
    assert _post(api_client, workspace, [_event(nudge, "open")], private_key).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_the_same_delivery_posted_at_once_is_applied_once(postgres, workspace, nudge):
    """Concurrent copies (SendGrid's retry racing the original, or a replay): the unique delivery
    row lets one apply; the others wait on it, then count a replay."""
    events = [_event(nudge, "open")]

    def apply(_) -> dict[str, int]:
        try:
            return webhook_events.sendgrid_events_apply(workspace=workspace, events=events)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(apply, range(6)))

    assert sorted(result["applied"] for result in results) == [0, 0, 0, 0, 0, 1]
    assert sum(result["replayed"] for result in results) == 5
    assert nudge.events.filter(source="sendgrid").count() == 1
