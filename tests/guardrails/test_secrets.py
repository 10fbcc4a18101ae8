"""Workspace secrets: encrypted at rest with keys from the environment, rotatable, write-only in
the admin, audited without their value."""

import json
from io import StringIO

import pytest
from cryptography.fernet import Fernet, InvalidToken
from django.core.management import call_command
from django.db import connection

from guardrails.models import WorkspaceSecret
from guardrails.secrets import checks
from guardrails.secrets.selectors import workspace_secret_get
from guardrails.secrets.services import workspace_secret_set
from tenancy import services
from tenancy.models import AuditLog, Workspace
from tests.conftest import verified_client
from tests.factories import AdminUserFactory

pytestmark = pytest.mark.django_db

VALUE = "SG.live-4f8a2c9e1b7d-provider-secret"
OLD_KEY = Fernet.generate_key().decode()
NEW_KEY = Fernet.generate_key().decode()


@pytest.fixture
def acme(tenant) -> Workspace:
    return tenant[0]


@pytest.fixture
def globex(other_tenant) -> Workspace:
    return other_tenant[0]


def stored_ciphertext(secret_id: int) -> str:
    """The column as the database holds it, read without the ORM."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT ciphertext FROM guardrails_workspacesecret WHERE id = %s", [secret_id])
        return cursor.fetchone()[0]


def secret_audit_text() -> str:
    return json.dumps(
        list(AuditLog.objects.filter(object_type="guardrails.WorkspaceSecret").values("action", "changes"))
    )


def test_a_secret_round_trips_and_the_database_holds_only_ciphertext(acme, settings):
    settings.SECRETS_ENCRYPTION_KEY = [NEW_KEY]

    secret = workspace_secret_set(workspace=acme, name="sendgrid_api_key", value=VALUE)

    assert workspace_secret_get(workspace=acme, name="sendgrid_api_key") == VALUE
    ciphertext = stored_ciphertext(secret.pk)
    assert VALUE not in ciphertext and "live-4f8a2c9e1b7d" not in ciphertext
    assert Fernet(NEW_KEY.encode()).decrypt(ciphertext.encode()).decode() == VALUE
    [row] = AuditLog.objects.filter(action="secret.created")
    assert (row.workspace, row.actor_label, row.changes) == (
        acme,
        "cli",
        {"after": {"name": "sendgrid_api_key", "value": "[redacted]"}},
    )


def test_replacing_a_secret_keeps_one_row_and_records_the_replacement(acme):
    admin_user = AdminUserFactory(username="alice")
    workspace_secret_set(workspace=acme, name="twilio_token", value="first-value-1")

    workspace_secret_set(workspace=acme, name="twilio_token", value=VALUE, actor=admin_user)

    assert WorkspaceSecret.objects.filter(workspace=acme).count() == 1
    assert workspace_secret_get(workspace=acme, name="twilio_token") == VALUE
    assert [
        (row.action, row.actor_label) for row in AuditLog.objects.filter(action__startswith="secret.")
    ] == [
        ("secret.replaced", "alice"),
        ("secret.created", "cli"),
    ]
    assert VALUE not in secret_audit_text() and "first-value-1" not in secret_audit_text()


def test_a_workspace_reads_only_its_own_secrets(acme, globex):
    workspace_secret_set(workspace=acme, name="openai_api_key", value=VALUE)

    assert workspace_secret_get(workspace=globex, name="openai_api_key") is None
    assert workspace_secret_get(workspace=acme, name="missing") is None


def test_keys_rotate_new_key_first_then_the_old_one_can_go(acme, settings):
    settings.SECRETS_ENCRYPTION_KEY = [OLD_KEY]
    secret = workspace_secret_set(workspace=acme, name="sendgrid_api_key", value=VALUE)
    under_old_key = stored_ciphertext(secret.pk)

    settings.SECRETS_ENCRYPTION_KEY = [NEW_KEY, OLD_KEY]
    readable_during_rotation = workspace_secret_get(workspace=acme, name="sendgrid_api_key")
    output = StringIO()
    call_command("secrets_rotate", stdout=output)
    under_new_key = stored_ciphertext(secret.pk)

    settings.SECRETS_ENCRYPTION_KEY = [NEW_KEY]
    assert readable_during_rotation == VALUE
    assert output.getvalue().strip() == "Re-encrypted 1 secret(s) with the first key."
    assert under_new_key != under_old_key
    assert workspace_secret_get(workspace=acme, name="sendgrid_api_key") == VALUE
    settings.SECRETS_ENCRYPTION_KEY = [OLD_KEY]
    with pytest.raises(InvalidToken):
        workspace_secret_get(workspace=acme, name="sendgrid_api_key")
    [rotated] = AuditLog.objects.filter(action="secret.rotated")
    assert rotated.changes == {"after": {"count": 1}}


def test_without_a_configured_key_one_derived_from_secret_key_is_used(acme, settings):
    settings.SECRETS_ENCRYPTION_KEY = []
    workspace_secret_set(workspace=acme, name="intercom_token", value=VALUE)
    assert workspace_secret_get(workspace=acme, name="intercom_token") == VALUE

    settings.SECRET_KEY = "another-secret-key-entirely"
    with pytest.raises(InvalidToken):
        workspace_secret_get(workspace=acme, name="intercom_token")


def test_a_secret_needs_a_name_and_a_value(acme):
    with pytest.raises(ValueError):
        workspace_secret_set(workspace=acme, name=" ", value=VALUE)
    with pytest.raises(ValueError):
        workspace_secret_set(workspace=acme, name="sendgrid_api_key", value="")
    assert not WorkspaceSecret.objects.exists()


# --- Deployment checks -----------------------------------------------------------------------


def test_production_without_a_key_fails_the_deploy_check(settings):
    settings.DEBUG = False
    settings.SECRETS_ENCRYPTION_KEY = []
    assert [error.id for error in checks.secrets_encryption_key_set()] == ["guardrails.E001"]

    settings.SECRETS_ENCRYPTION_KEY = [NEW_KEY]
    assert checks.secrets_encryption_key_set() == []

    settings.DEBUG, settings.SECRETS_ENCRYPTION_KEY = True, []
    assert checks.secrets_encryption_key_set() == []


def test_a_key_that_is_not_a_fernet_key_fails_the_check(settings):
    settings.SECRETS_ENCRYPTION_KEY = [NEW_KEY, "not-a-key"]

    assert [error.msg for error in checks.secrets_encryption_keys_valid()] == [
        "Key 2 of SECRETS_ENCRYPTION_KEY is not a Fernet key."
    ]


# --- Admin -----------------------------------------------------------------------------------


@pytest.fixture
def alice(acme):
    user = AdminUserFactory(username="alice")
    services.workspace_grant(workspace=acme, user=user, can_change=True)
    return user


def test_the_admin_sets_a_secret_write_only_and_never_shows_it_again(acme, alice):
    client = verified_client(alice)

    added = client.post(
        "/admin/guardrails/workspacesecret/add/",
        {"workspace": acme.pk, "name": "sendgrid_api_key", "value": VALUE},
    )

    assert added.status_code == 302
    secret = WorkspaceSecret.objects.get(workspace=acme, name="sendgrid_api_key")
    assert workspace_secret_get(workspace=acme, name="sendgrid_api_key") == VALUE
    page = client.get(f"/admin/guardrails/workspacesecret/{secret.pk}/change/").content.decode()
    listing = client.get("/admin/guardrails/workspacesecret/").content.decode()
    for html in (page, listing):
        assert VALUE not in html and secret.ciphertext not in html
        assert f"set on {secret.updated_at:%Y-%m-%d %H:%M} UTC" in html
    assert VALUE not in secret_audit_text() and secret.ciphertext not in secret_audit_text()
    assert [row.actor for row in AuditLog.objects.filter(action="secret.created")] == [alice]


def test_the_admin_replaces_a_secret_and_an_empty_field_keeps_it(acme, alice):
    client = verified_client(alice)
    secret = workspace_secret_set(workspace=acme, name="sendgrid_api_key", value="old-value-123")
    url = f"/admin/guardrails/workspacesecret/{secret.pk}/change/"

    kept = client.post(url, {"value": ""})
    kept_value = workspace_secret_get(workspace=acme, name="sendgrid_api_key")
    replaced = client.post(url, {"value": VALUE})

    assert (kept.status_code, replaced.status_code) == (302, 302)
    assert kept_value == "old-value-123"
    assert workspace_secret_get(workspace=acme, name="sendgrid_api_key") == VALUE
    [change] = AuditLog.objects.filter(action="admin.change", changes__after__has_key="ciphertext")
    assert change.changes["before"]["ciphertext"] == change.changes["after"]["ciphertext"] == "[redacted]"
    assert "old-value-123" not in secret_audit_text() and VALUE not in secret_audit_text()


def test_a_new_secret_without_a_value_is_refused(acme, alice):
    client = verified_client(alice)

    response = client.post("/admin/guardrails/workspacesecret/add/", {"workspace": acme.pk, "name": "x"})

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["value"] == ["A new secret needs a value."]
    assert not WorkspaceSecret.objects.exists()


def test_an_admin_of_another_workspace_sees_none_of_its_secrets(acme, globex):
    workspace_secret_set(workspace=acme, name="sendgrid_api_key", value=VALUE)
    bob = AdminUserFactory(username="bob")
    services.workspace_grant(workspace=globex, user=bob, can_change=True)

    response = verified_client(bob).get("/admin/guardrails/workspacesecret/")

    assert list(response.context["cl"].result_list) == []
