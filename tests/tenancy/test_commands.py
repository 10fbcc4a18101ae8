"""Management commands an engineer runs: create_workspace and otp_enrol."""

import io
import json
import re
from base64 import b32decode

import pytest
from django.core.management import CommandError, call_command
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from tenancy.keys import key_digest
from tenancy.models import ApiKey, Workspace
from tests.conftest import basic_auth
from tests.factories import AdminUserFactory

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_create_workspace_json_prints_keys_that_authenticate(api_client):
    printed = json.loads(run("create_workspace", "--name", "Acme", "--json"))

    workspace = Workspace.objects.get()
    assert printed["workspace"] == workspace.slug == "acme"
    assert printed["name"] == "Acme"
    for key in (printed["write_key"], printed["secret_key"]):
        response = api_client.post(
            "/v1/track",
            {"userId": "u-1", "event": "Signed Up", "messageId": f"m-{key[:2]}"},
            format="json",
            HTTP_AUTHORIZATION=basic_auth(key),
        )
        assert response.status_code == 200, response.content
    assert printed["write_key"].startswith("wk_") and printed["secret_key"].startswith("sk_")


def test_create_workspace_stores_digests_not_keys():
    printed = json.loads(run("create_workspace", "--name", "Acme", "--json"))

    rows = list(ApiKey.objects.values("kind", "key_digest", "prefix", "name"))
    by_kind = {row["kind"]: row for row in rows}
    assert by_kind["write"]["key_digest"] == key_digest(printed["write_key"]) != printed["write_key"]
    assert by_kind["secret"]["key_digest"] == key_digest(printed["secret_key"]) != printed["secret_key"]
    stored = json.dumps(rows)
    assert printed["write_key"] not in stored and printed["secret_key"] not in stored


def test_create_workspace_refuses_an_empty_name():
    with pytest.raises(CommandError, match="must not be empty"):
        run("create_workspace", "--name", "  ")

    assert not Workspace.objects.exists()


def printed_secret(output: str) -> str:
    return re.search(r"secret:\s+([A-Z2-7]+)", output).group(1)


def test_otp_enrol_creates_a_confirmed_device_and_shows_it():
    admin = AdminUserFactory(username="ops", is_superuser=True)

    output = run("otp_enrol", "--username", "ops")

    device = TOTPDevice.objects.get(user=admin)
    assert device.confirmed is True
    assert device.config_url in output
    assert "otpauth://totp/" in output and "█" in output
    secret = printed_secret(output)
    assert b32decode(secret) == device.bin_key
    token = TOTP(b32decode(secret)).token()
    assert device.verify_token(f"{token:06d}")


def test_otp_enrol_twice_needs_reset_which_replaces_the_device():
    admin = AdminUserFactory(username="ops")
    first = printed_secret(run("otp_enrol", "--username", "ops"))

    with pytest.raises(CommandError, match="--reset"):
        run("otp_enrol", "--username", "ops")
    assert TOTPDevice.objects.get(user=admin).bin_key == b32decode(first)

    second = printed_secret(run("otp_enrol", "--username", "ops", "--reset"))
    assert second != first
    assert TOTPDevice.objects.get(user=admin).bin_key == b32decode(second)


@pytest.mark.parametrize(
    ("username", "is_staff", "reason"), [("nobody", True, "No user named"), ("ops", False, "not staff")]
)
def test_otp_enrol_refuses_unknown_and_non_staff_users(username, is_staff, reason):
    AdminUserFactory(username="ops", is_staff=is_staff)

    with pytest.raises(CommandError, match=reason):
        run("otp_enrol", "--username", username)

    assert not TOTPDevice.objects.exists()
