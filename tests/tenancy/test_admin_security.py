"""Admin security as an administrator meets it: idle sessions end, repeated failed sign-ins
lock the account and the network out for a while, and each admin sees their recent sign-ins."""

import time

import pytest
from django.test import Client, RequestFactory
from django_otp.plugins.otp_totp.models import TOTPDevice

from tenancy.admin_security import LAST_SEEN_SESSION_KEY, ip_network_text, record_login
from tenancy.models import AuditLog
from tests.conftest import verified_client
from tests.factories import AdminUserFactory
from tests.onboarding.test_admin import PASSWORD, current_token

pytestmark = pytest.mark.django_db


@pytest.fixture
def root():
    return AdminUserFactory(username="root", is_superuser=True)


def sign_in(client: Client, username: str, password: str, token: str, address: str = "203.0.113.7"):
    return client.post(
        "/admin/login/?next=/admin/",
        {"username": username, "password": password, "otp_token": token, "next": "/admin/"},
        REMOTE_ADDR=address,
    )


def login_rows(user=None) -> list[tuple[str, str]]:
    rows = AuditLog.objects.filter(action__startswith="admin.").exclude(
        action__in=["admin.change", "admin.add"]
    )
    if user is not None:
        rows = rows.filter(actor=user)
    return [(row.action, row.changes.get("after", {}).get("reason", "")) for row in rows.order_by("pk")]


# --- Idle sessions ---------------------------------------------------------------------------


def idle_for(client: Client, seconds: int) -> None:
    session = client.session
    session[LAST_SEEN_SESSION_KEY] = int(time.time()) - seconds
    session.save()


def test_an_admin_idle_longer_than_the_limit_is_signed_out(root, settings):
    settings.ADMIN_SESSION_IDLE_SECONDS = 1800
    client = verified_client(root)
    assert client.get("/admin/").status_code == 200

    idle_for(client, 1801)
    response = client.get("/admin/onboarding/workspace/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/")
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302
    assert login_rows(root) == [("admin.session_expired", "")]
    page = client.get(response["Location"])
    assert "You were signed out after 30 minutes without activity." in page.content.decode()


def test_activity_within_the_limit_keeps_the_session_alive(root, settings):
    settings.ADMIN_SESSION_IDLE_SECONDS = 1800
    client = verified_client(root)

    idle_for(client, 1700)
    first = client.get("/admin/")
    idle_for(client, 1700)
    second = client.get("/admin/")

    assert (first.status_code, second.status_code) == (200, 200)
    assert int(time.time()) - client.session[LAST_SEEN_SESSION_KEY] <= 2
    assert login_rows(root) == []


def test_the_api_neither_reads_nor_writes_an_admin_session(root, segment):
    client = verified_client(root)
    idle_for(client, 5000)

    # An API call with the admin's session cookie: the idle check is not applied outside /admin/.
    response = segment(
        "track", {"userId": "u-1", "event": "E"}, HTTP_COOKIE=f"sessionid={client.session.session_key}"
    )

    assert response.status_code == 200
    assert client.session[LAST_SEEN_SESSION_KEY] <= int(time.time()) - 5000
    assert login_rows(root) == []


# --- Sign-in attempts ------------------------------------------------------------------------


def test_a_successful_sign_in_is_recorded_with_the_network_only(root):
    device = TOTPDevice.objects.create(user=root, name="phone", confirmed=True)
    client = Client()

    response = sign_in(client, "root", PASSWORD, current_token(device))

    assert response.status_code == 302
    [row] = AuditLog.objects.filter(action="admin.login")
    assert (row.actor, row.actor_label, row.changes) == (
        root,
        "root",
        {"after": {"ip_network": "203.0.113.0/24"}},
    )
    assert "203.0.113.7" not in str(row.changes)


def test_the_fifth_failed_sign_in_locks_the_account_even_for_the_right_credentials(root):
    device = TOTPDevice.objects.create(user=root, name="phone", confirmed=True)
    client = Client()

    failures = [sign_in(client, "root", "wrong password", "123456").status_code for _ in range(5)]
    locked = sign_in(client, "root", PASSWORD, current_token(device))

    assert failures == [200] * 4 + [429]  # the fifth failure is answered with the lockout
    assert locked.status_code == 429
    assert locked["Retry-After"] == "900"
    assert "Too many failed sign-in attempts" in locked.content.decode()
    assert "Sign-in is paused for 15 minutes" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    assert (
        login_rows(root)
        == [("admin.login_failed", "wrong_credentials")] * 4 + [("admin.login_failed", "locked_out")] * 2
    )


def test_wrong_authenticator_codes_count_towards_the_lockout(root):
    device = TOTPDevice.objects.create(user=root, name="phone", confirmed=True)
    client = Client()

    for _ in range(5):
        sign_in(client, "root", PASSWORD, "000000")
    locked = sign_in(client, "root", PASSWORD, current_token(device))

    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    assert (
        login_rows(root)
        == [("admin.login_failed", "wrong_otp_token")] * 4 + [("admin.login_failed", "locked_out")] * 2
    )


def test_many_user_names_from_one_address_lock_the_address_out(root):
    device = TOTPDevice.objects.create(user=root, name="phone", confirmed=True)
    client = Client()

    for number in range(5):
        sign_in(client, f"guess{number}", "wrong password", "123456", address="198.51.100.20")
    from_there = sign_in(client, "root", PASSWORD, current_token(device), address="198.51.100.20")
    elsewhere = sign_in(Client(), "root", PASSWORD, current_token(device), address="192.0.2.5")

    assert from_there.status_code == 429
    assert elsewhere.status_code == 302
    unknown = AuditLog.objects.filter(action="admin.login_failed", actor__isnull=True)
    assert {row.actor_label for row in unknown} == {"unknown user"}
    assert not AuditLog.objects.filter(actor_label__startswith="guess").exists()


def test_a_successful_sign_in_clears_earlier_failures(root):
    device = TOTPDevice.objects.create(user=root, name="phone", confirmed=True)

    for _ in range(4):
        sign_in(Client(), "root", "wrong password", "123456")
    assert sign_in(Client(), "root", PASSWORD, current_token(device)).status_code == 302
    TOTPDevice.objects.filter(pk=device.pk).update(last_t=-1)  # a code is good once: allow it again
    for _ in range(4):
        sign_in(Client(), "root", "wrong password", "123456")

    assert sign_in(Client(), "root", PASSWORD, current_token(device)).status_code == 302


# --- Recent sign-ins -------------------------------------------------------------------------


def test_the_user_page_and_the_index_show_the_last_ten_sign_ins(root):
    device = TOTPDevice.objects.create(user=root, name="phone", confirmed=True)
    sign_in(Client(), "root", "wrong password", "123456", address="192.0.2.44")
    # An authenticator code signs in once: earlier sign-ins are recorded as the login view would.
    earlier = RequestFactory().post("/admin/login/", REMOTE_ADDR="2001:db8:abcd:12::1")
    for _ in range(10):
        record_login(earlier, action="admin.login", user=root)
    client = Client()
    sign_in(client, "root", PASSWORD, current_token(device))

    user_page = client.get(f"/admin/auth/user/{root.pk}/change/").content.decode()
    index = client.get("/admin/").content.decode()

    assert "Recent sign-ins" in user_page and "Last 10 sign-ins" in user_page
    assert user_page.count("<td>login</td>") == 10
    assert "login_failed" not in user_page  # the oldest of the twelve attempts is past the ten
    assert user_page.count("203.0.113.0/24") == 1  # the newest, through the form
    assert "203.0.113.0/24" in user_page and "2001:db8:abcd::/48" in user_page
    assert "Your recent sign-ins" in index
    assert index.count("signed in</td>") == 10
    assert "2001:db8:abcd:12::1" not in index + user_page


def test_another_admins_sign_ins_are_not_in_my_panel(root):
    other = AdminUserFactory(username="other", is_superuser=True)
    device = TOTPDevice.objects.create(user=other, name="phone", confirmed=True)
    sign_in(Client(), "other", PASSWORD, current_token(device))

    index = verified_client(root).get("/admin/")

    assert list(index.context["recent_logins"]) == []


def test_addresses_are_kept_to_their_network():
    assert ip_network_text("203.0.113.77") == "203.0.113.0/24"
    assert ip_network_text("2001:db8:abcd:12::1") == "2001:db8:abcd::/48"
    assert ip_network_text("not an address") == ""
