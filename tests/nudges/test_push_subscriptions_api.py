"""POST/DELETE /api/v1/users/{user_id}/push-subscriptions: the browser's PushSubscription JSON."""

import base64
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from django.utils import timezone

from nudges.models import PushSubscription
from tests.conftest import end_user_client, key_client
from tests.factories import EndUserFactory

pytestmark = pytest.mark.django_db

SUBSCRIPTIONS = "/api/v1/users/{}/push-subscriptions"
ENDPOINT = "https://fcm.googleapis.com/fcm/send/abc:APA91b-example"


def _b64url(data: bytes, *, padded: bool = False) -> str:
    encoded = base64.urlsafe_b64encode(data).decode()
    return encoded if padded else encoded.rstrip("=")


def _p256dh() -> bytes:
    return (
        ec.generate_private_key(ec.SECP256R1())
        .public_key()
        .public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    )


def _subscription(endpoint: str = ENDPOINT, **keys) -> dict:
    return {
        "endpoint": endpoint,
        "expirationTime": None,
        "keys": {"p256dh": _b64url(_p256dh()), "auth": _b64url(os.urandom(16)), **keys},
    }


@pytest.fixture
def ada(tenant):
    return EndUserFactory(workspace=tenant[0], external_id="ada")


@pytest.fixture
def bob(tenant):
    return EndUserFactory(workspace=tenant[0], external_id="bob")


def test_the_users_browser_saves_its_subscription(ada):
    body = _subscription()

    response = end_user_client(ada).post(SUBSCRIPTIONS.format("ada"), body, format="json")

    assert response.status_code == 201
    subscription = PushSubscription.objects.get()
    assert response.json() == {
        "id": subscription.pk,
        "endpoint": ENDPOINT,
        "created_at": subscription.created_at.isoformat().replace("+00:00", "Z"),
    }
    assert (subscription.workspace, subscription.end_user, subscription.endpoint) == (
        ada.workspace,
        ada,
        ENDPOINT,
    )
    assert (subscription.p256dh, subscription.auth) == (body["keys"]["p256dh"], body["keys"]["auth"])


def test_saving_the_same_endpoint_again_replaces_its_keys_and_revives_it(server, ada):
    server.post(SUBSCRIPTIONS.format("ada"), _subscription(), format="json")
    PushSubscription.objects.update(revoked_at=timezone.now())
    renewed = _subscription(p256dh=_b64url(_p256dh(), padded=True))

    response = server.post(SUBSCRIPTIONS.format("ada"), renewed, format="json")

    assert response.status_code == 200
    subscription = PushSubscription.objects.get()
    assert subscription.p256dh == renewed["keys"]["p256dh"].rstrip("=")
    assert subscription.revoked_at is None


def test_another_user_subscribing_the_same_browser_takes_the_endpoint_over(server, ada, bob):
    server.post(SUBSCRIPTIONS.format("ada"), _subscription(), format="json")
    server.post(SUBSCRIPTIONS.format("ada"), _subscription(ENDPOINT + "-other"), format="json")

    assert server.post(SUBSCRIPTIONS.format("bob"), _subscription(), format="json").status_code == 201

    assert sorted(PushSubscription.objects.values_list("end_user__external_id", "endpoint")) == [
        ("ada", ENDPOINT + "-other"),
        ("bob", ENDPOINT),
    ]


@pytest.mark.parametrize(
    ("change", "field", "reason"),
    [
        ({"endpoint": "http://push.example.com/x"}, "endpoint", "must be an https URL"),
        ({"endpoint": "not a url"}, "endpoint", "Enter a valid URL."),
        ({"keys": {"auth": _b64url(os.urandom(16))}}, "keys.p256dh", "This field is required."),
        (
            {"keys": {"p256dh": _b64url(os.urandom(64)), "auth": _b64url(os.urandom(16))}},
            "keys.p256dh",
            "must decode to 65 bytes, not 64",
        ),
        (
            {"keys": {"p256dh": _b64url(b"\x02" + os.urandom(64)), "auth": _b64url(os.urandom(16))}},
            "keys.p256dh",
            "must be an uncompressed P-256 point",
        ),
        (
            {"keys": {"p256dh": _b64url(_p256dh()), "auth": "not+base64/url"}},
            "keys.auth",
            "must be base64url",
        ),
        (
            {"keys": {"p256dh": _b64url(_p256dh()), "auth": _b64url(os.urandom(12))}},
            "keys.auth",
            "must decode to 16 bytes, not 12",
        ),
        ({"keys": "nope"}, "keys.non_field_errors", "Invalid data."),
    ],
)
def test_invalid_subscriptions_are_field_errors_and_nothing_is_saved(server, ada, change, field, reason):
    response = server.post(SUBSCRIPTIONS.format("ada"), {**_subscription(), **change}, format="json")

    assert response.status_code == 400
    body = response.json()
    assert body["detail"] == "Invalid request."
    [error] = body["errors"]
    assert error["field"] == field
    assert error["reason"].startswith(reason)
    assert not PushSubscription.objects.exists()


def test_a_missing_body_names_every_required_field(server, ada):
    response = server.post(SUBSCRIPTIONS.format("ada"), {}, format="json")

    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == ["endpoint", "keys"]


def test_delete_removes_the_subscription_by_endpoint_in_the_body_or_the_query(server, ada):
    client = end_user_client(ada)
    client.post(SUBSCRIPTIONS.format("ada"), _subscription(), format="json")
    client.post(SUBSCRIPTIONS.format("ada"), _subscription(ENDPOINT + "-2"), format="json")

    by_body = client.delete(SUBSCRIPTIONS.format("ada"), {"endpoint": ENDPOINT}, format="json")
    by_query = client.delete(SUBSCRIPTIONS.format("ada") + f"?endpoint={ENDPOINT}-2")
    again = client.delete(SUBSCRIPTIONS.format("ada"), {"endpoint": ENDPOINT}, format="json")

    assert (by_body.status_code, by_query.status_code) == (204, 204)
    assert (again.status_code, again.json()) == (
        404,
        {"detail": "User 'ada' has no push subscription for that endpoint."},
    )
    assert not PushSubscription.objects.exists()
    assert client.delete(SUBSCRIPTIONS.format("ada")).status_code == 400


def test_a_token_for_another_user_can_neither_save_nor_delete(ada, bob, server):
    server.post(SUBSCRIPTIONS.format("bob"), _subscription(), format="json")
    client = end_user_client(ada)

    assert (
        client.post(SUBSCRIPTIONS.format("bob"), _subscription(ENDPOINT + "-x"), format="json").status_code
        == 403
    )
    assert (
        client.delete(SUBSCRIPTIONS.format("bob"), {"endpoint": ENDPOINT}, format="json").status_code == 403
    )
    # Ada cannot remove Bob's subscription through her own path either.
    assert (
        client.delete(SUBSCRIPTIONS.format("ada"), {"endpoint": ENDPOINT}, format="json").status_code == 404
    )
    assert list(PushSubscription.objects.values_list("end_user__external_id", "endpoint")) == [
        ("bob", ENDPOINT)
    ]


def test_write_keys_and_unknown_users_are_refused(tenant, server):
    write = key_client(tenant[1])

    assert write.post(SUBSCRIPTIONS.format("ada"), _subscription(), format="json").status_code == 403
    response = server.post(SUBSCRIPTIONS.format("nobody"), _subscription(), format="json")
    assert (response.status_code, response.json()) == (404, {"detail": "No such user: 'nobody'."})
    assert not PushSubscription.objects.exists()
