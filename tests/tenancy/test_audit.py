"""The audit trail: every admin change with before/after values, key lifecycle, request ids, an
append-only log that the admin shows read-only and exports within the admin's workspaces."""

import csv
import io
import json

import orjson
import pytest
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.test import Client

from guardrails.models import LLMCall
from paths import services as path_services
from paths.models import PathVersion
from tenancy import services
from tenancy.audit import REDACTED, audit_record, audit_snapshot
from tenancy.models import ApiKey, AuditLog, Workspace
from tests.conftest import post_action, verified_client
from tests.factories import (
    CANARY_EMAIL,
    CANARY_FIRST_NAME,
    AdminUserFactory,
    ContactFactory,
    EndUserFactory,
    EventFactory,
)
from tests.paths.test_admin import step_form, version_post

pytestmark = pytest.mark.django_db


@pytest.fixture
def acme(tenant) -> Workspace:
    return tenant[0]


@pytest.fixture
def globex(other_tenant) -> Workspace:
    return other_tenant[0]


@pytest.fixture
def root():
    return AdminUserFactory(username="root", is_superuser=True)


@pytest.fixture
def alice(acme):
    """An admin who may change Acme, and nothing else."""
    user = AdminUserFactory(username="alice")
    services.workspace_grant(workspace=acme, user=user, can_change=True)
    return user


def rows(action: str, **filters) -> list[AuditLog]:
    return list(AuditLog.objects.filter(action=action, **filters).order_by("pk"))


# --- Add, change, delete through the admin -------------------------------------------------


def test_changing_a_workspace_records_the_changed_field_before_and_after(acme, root):
    client = verified_client(root)

    response = client.post(f"/admin/onboarding/workspace/{acme.pk}/change/", {"name": "Acme Corp"})

    assert response.status_code == 302
    [row] = rows("admin.change")
    assert (row.actor, row.actor_label, row.workspace, row.object_type, row.object_id) == (
        root,
        "root",
        acme,
        "onboarding.Workspace",
        str(acme.pk),
    )
    assert row.changes == {"before": {"name": "Acme"}, "after": {"name": "Acme Corp"}}
    assert row.request_id == response["X-Request-ID"]


def test_a_key_added_in_the_admin_is_recorded_without_its_digest(acme, alice):
    client = verified_client(alice)

    client.post(
        "/admin/onboarding/apikey/add/", {"workspace": acme.pk, "name": "Mobile app", "kind": "write"}
    )

    api_key = ApiKey.objects.get(name="Mobile app")
    [added] = rows("admin.add")
    assert (added.actor, added.workspace, added.object_id) == (alice, acme, str(api_key.pk))
    after = added.changes["after"]
    assert (after["name"], after["kind"], after["prefix"], after["key_digest"]) == (
        "Mobile app",
        "write",
        api_key.prefix,
        REDACTED,
    )
    assert api_key.key_digest not in json.dumps(added.changes)
    [created] = rows("api_key.created", object_id=str(api_key.pk))
    assert (created.actor, created.actor_label) == (alice, "alice")
    assert created.changes == {
        "after": {"name": "Mobile app", "kind": "write", "prefix": api_key.prefix, "scopes": ["events:write"]}
    }
    assert created.request_id == added.request_id != ""


def test_revoking_keys_with_the_admin_action_records_each_key_and_the_revocation(acme, alice):
    client = verified_client(alice)
    write_key = ApiKey.objects.get(workspace=acme, kind="write")

    response = post_action(client, "/admin/onboarding/apikey/", "revoke", [write_key])

    assert response.status_code == 302
    write_key.refresh_from_db()
    [action] = rows("admin.action.revoke")
    assert (action.actor, action.workspace, action.object_id) == (alice, acme, str(write_key.pk))
    assert action.changes == {
        "before": {"revoked_at": None},
        "after": {"revoked_at": write_key.revoked_at.isoformat()},
    }
    [revoked] = rows("api_key.revoked")
    assert (revoked.actor, revoked.object_id) == (alice, str(write_key.pk))
    assert revoked.changes["before"] == {"revoked_at": None}


def test_revoking_a_revoked_key_again_records_nothing_more(acme):
    api_key = ApiKey.objects.get(workspace=acme, kind="write")
    services.api_key_revoke(api_key=api_key)
    first = api_key.revoked_at

    services.api_key_revoke(api_key=api_key)

    assert api_key.revoked_at == first
    assert [(row.actor_label, row.object_id) for row in rows("api_key.revoked")] == [("cli", str(api_key.pk))]


def test_keys_created_outside_the_admin_name_the_cli_as_actor(db):
    workspace, _, _ = services.workspace_create(name="Initech")

    created = rows("api_key.created", workspace=workspace)
    assert [(row.actor, row.actor_label, row.changes["after"]["kind"]) for row in created] == [
        (None, "cli", "write"),
        (None, "cli", "secret"),
    ]
    assert all(row.request_id == "" for row in created)


def test_publishing_with_the_button_records_the_status_change(acme, alice):
    client = verified_client(alice)
    path = path_services.path_create(workspace=acme, key="main", name="Main")
    draft = path.versions.get()
    path_services.step_create(path_version=draft, key="connect", title="Connect", event_name="Connected")

    client.post(f"/admin/paths/pathversion/{draft.pk}/publish/")

    draft.refresh_from_db()
    assert draft.status == PathVersion.Status.PUBLISHED
    [row] = rows("admin.publish")
    assert (row.actor, row.workspace, row.object_type, row.object_id) == (
        alice,
        acme,
        "paths.PathVersion",
        str(draft.pk),
    )
    assert row.changes["before"]["status"] == "draft"
    assert row.changes["after"]["status"] == "published"
    assert row.changes["after"]["published_by"] == alice.pk


def test_archiving_and_cloning_from_the_changelist_are_recorded_per_version(acme, alice):
    client = verified_client(alice)
    path = path_services.path_create(workspace=acme, key="main", name="Main")
    draft = path.versions.get()
    path_services.step_create(path_version=draft, key="connect", title="Connect", event_name="Connected")
    path_services.path_version_publish(path_version=draft)

    post_action(client, "/admin/paths/pathversion/", "clone_to_draft", [draft])
    post_action(client, "/admin/paths/pathversion/", "archive", [draft])

    [cloned] = rows("admin.action.clone_to_draft")
    assert (cloned.object_id, cloned.changes) == (str(draft.pk), {"before": {}, "after": {}})
    [archived] = rows("admin.action.archive")
    assert (archived.changes["before"]["status"], archived.changes["after"]["status"]) == (
        "published",
        "archived",
    )


def test_editing_a_drafts_steps_records_each_inline_row(acme, alice):
    client = verified_client(alice)
    draft = path_services.path_create(workspace=acme, key="main", name="Main").versions.get()
    step = path_services.step_create(
        path_version=draft, key="connect", title="Connect", event_name="Connected"
    )

    response = client.post(
        f"/admin/paths/pathversion/{draft.pk}/change/",
        version_post(
            draft,
            [
                step_form(0, step=step, key="connect", title="Connect your repo", event_name="Connected"),
                step_form(1, key="invite", title="Invite", event_name="Invited"),
            ],
            initial=1,
            changelog="Clearer title",
        ),
    )

    assert response.status_code == 302
    [changed_step] = rows("admin.change", object_type="paths.Step")
    assert changed_step.changes == {"before": {"title": "Connect"}, "after": {"title": "Connect your repo"}}
    [added_step] = rows("admin.add", object_type="paths.Step")
    assert (added_step.workspace, added_step.changes["after"]["key"]) == (acme, "invite")
    [version] = rows("admin.change", object_type="paths.PathVersion")
    assert version.changes["after"]["changelog"] == "Clearer title"


def test_user_changes_record_groups_but_only_that_contact_data_and_password_changed(root):
    client = verified_client(root)
    editor = AdminUserFactory(username="editor", email="editor@example.com", first_name="Ed")
    group = Group.objects.create(name="Growth")
    old_hash = editor.password

    response = client.post(
        f"/admin/auth/user/{editor.pk}/change/",
        {
            "username": "editor",
            "first_name": CANARY_FIRST_NAME,
            "last_name": "",
            "email": CANARY_EMAIL,
            "is_active": "on",
            "is_staff": "on",
            "groups": [group.pk],
            "last_login_0": "",
            "last_login_1": "",
            "date_joined_0": "2024-01-01",
            "date_joined_1": "10:00:00",
        },
    )
    password = client.post(
        f"/admin/auth/user/{editor.pk}/password/",
        {"password1": "another long passphrase 42", "password2": "another long passphrase 42"},
    )

    assert (response.status_code, password.status_code) == (302, 302)
    first, second = rows("admin.change", object_type="auth.User")
    assert first.changes["before"]["groups"] == [] and first.changes["after"]["groups"] == [group.pk]
    assert first.changes["before"]["email"] == first.changes["after"]["email"] == REDACTED
    assert first.changes["after"]["first_name"] == REDACTED
    assert second.changes == {"before": {"password": REDACTED}, "after": {"password": REDACTED}}
    stored = json.dumps([first.changes, second.changes])
    for secret in (CANARY_EMAIL, CANARY_FIRST_NAME, "editor@example.com", old_hash, "pbkdf2"):
        assert secret not in stored


def test_adding_and_deleting_a_group_records_its_permissions_before_deletion(root):
    client = verified_client(root)
    permission = Permission.objects.get(codename="view_workspace")

    client.post("/admin/auth/group/add/", {"name": "Readers", "permissions": [permission.pk]})
    group = Group.objects.get(name="Readers")
    deleted = client.post(f"/admin/auth/group/{group.pk}/delete/", {"post": "yes"})

    assert deleted.status_code == 302
    assert not Group.objects.filter(name="Readers").exists()
    [added] = rows("admin.add", object_type="auth.Group")
    assert added.changes == {"after": {"id": group.pk, "name": "Readers", "permissions": [permission.pk]}}
    [removed] = rows("admin.delete", object_type="auth.Group")
    assert (removed.object_id, removed.changes) == (
        str(group.pk),
        {"before": {"id": group.pk, "name": "Readers", "permissions": [permission.pk]}},
    )


def test_deleting_selected_users_records_each_one_once(root):
    client = verified_client(root)
    users = [AdminUserFactory(username="temp1"), AdminUserFactory(username="temp2")]

    confirm = post_action(client, "/admin/auth/user/", "delete_selected", users)
    done = client.post(
        "/admin/auth/user/",
        {"action": "delete_selected", "_selected_action": [user.pk for user in users], "post": "yes"},
    )

    assert (confirm.status_code, done.status_code) == (200, 302)
    deleted = rows("admin.delete", object_type="auth.User")
    assert [row.changes["before"]["username"] for row in deleted] == ["temp1", "temp2"]
    assert all(row.changes["before"]["password"] == REDACTED for row in deleted)
    assert not rows("admin.action.delete_selected")


def test_granting_a_workspace_to_a_user_records_the_object_permissions(acme, root):
    client = verified_client(root)
    bob = AdminUserFactory(username="bob")

    client.post(
        f"/admin/onboarding/workspace/{acme.pk}/permissions/user-manage/{bob.pk}/",
        {"permissions": ["view_workspace"]},
    )

    [row] = rows("admin.permissions_manage_user")
    assert row.workspace == acme
    assert row.changes == {
        "before": {"object_permissions": []},
        "after": {"object_permissions": ["user:bob:view_workspace"]},
    }


def test_a_contacts_values_never_reach_a_snapshot(db):
    contact = ContactFactory()

    snapshot = audit_snapshot(contact)

    assert {name: value for name, value in snapshot.items() if name not in ("id", "end_user", "updated_at")}
    for name in ("email", "phone", "first_name", "last_name", "name", "address"):
        assert snapshot[name] is not None and CANARY_EMAIL not in repr(snapshot[name])


def test_contact_traits_inside_json_values_are_redacted(acme):
    end_user = EndUserFactory(workspace=acme, traits={"plan": "pro", "email": CANARY_EMAIL})
    event = EventFactory(end_user=end_user, properties={"nested": [{"phone": "+14155550173"}]})

    assert audit_snapshot(end_user)["traits"] == {"plan": "pro", "email": REDACTED}
    assert audit_snapshot(event)["properties"] == {"nested": [{"phone": REDACTED}]}


# --- Append-only -----------------------------------------------------------------------------


def test_audit_rows_cannot_be_changed_or_deleted_through_the_orm(acme):
    row = audit_record(workspace=acme, action="test.recorded", actor_label="cli", after={"n": 1})

    row.action = "test.tampered"
    with pytest.raises(PermissionDenied):
        row.save()
    with pytest.raises(PermissionDenied):
        row.delete()
    with pytest.raises(PermissionDenied):
        AuditLog.objects.filter(pk=row.pk).update(action="test.tampered")
    with pytest.raises(PermissionDenied):
        AuditLog.objects.filter(pk=row.pk).delete()

    stored = AuditLog.objects.get(pk=row.pk)
    assert (stored.action, stored.changes) == ("test.recorded", {"after": {"n": 1}})


def test_audit_rows_are_read_only_in_the_admin_even_for_a_superuser(acme, root):
    client = verified_client(root)
    row = audit_record(workspace=acme, action="test.recorded", actor_label="cli")
    before = AuditLog.objects.count()

    page = client.get(f"/admin/guardrails/auditlog/{row.pk}/change/")
    changed = client.post(f"/admin/guardrails/auditlog/{row.pk}/change/", {"action": "test.tampered"})
    deleted = client.post(f"/admin/guardrails/auditlog/{row.pk}/delete/", {"post": "yes"})
    added = client.get("/admin/guardrails/auditlog/add/")

    assert page.status_code == 200
    assert "Save" not in page.content.decode()
    assert (changed.status_code, deleted.status_code, added.status_code) == (403, 403, 403)
    assert AuditLog.objects.get(pk=row.pk).action == "test.recorded"
    assert AuditLog.objects.count() == before


# --- Admin lists and exports -----------------------------------------------------------------


@pytest.fixture
def audited_tenants(acme, globex):
    """Two rows in each workspace, one without a workspace."""
    audit_record(workspace=acme, action="consent.granted", actor_label="api", request_id="req-a1")
    audit_record(workspace=acme, action="consent.withdrawn", actor_label="api", request_id="req-a2")
    audit_record(workspace=globex, action="consent.granted", actor_label="api", request_id="req-g1")
    audit_record(workspace=None, action="secret.rotated", actor_label="cli", request_id="req-n1")
    LLMCall.objects.create(workspace=acme, model="gpt-4o-mini", outcome="ok", redacted_input={"a": 1})
    LLMCall.objects.create(workspace=acme, model="gpt-4o-mini", outcome="fallback", fallback_reason="timeout")
    LLMCall.objects.create(
        workspace=globex, model="gpt-4o-mini", outcome="fallback", fallback_reason="budget"
    )
    return acme, globex


def export_ndjson(client: Client, path: str) -> list[dict]:
    response = client.get(path)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-ndjson"
    return [orjson.loads(line) for line in b"".join(response.streaming_content).splitlines()]


def export_csv(client: Client, path: str) -> list[dict]:
    response = client.get(path)
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


def test_exports_hold_the_filtered_rows_of_the_admins_workspaces_only(audited_tenants, alice):
    acme, _ = audited_tenants
    client = verified_client(alice)

    ndjson = export_ndjson(client, "/admin/guardrails/auditlog/export.ndjson?action=consent.granted")
    csv_rows = export_csv(client, "/admin/guardrails/auditlog/export.csv?action__exact=consent.granted")
    everything = export_csv(client, "/admin/guardrails/auditlog/export.csv")

    assert [(row["action"], row["workspace_id"], row["request_id"]) for row in ndjson] == [
        ("consent.granted", acme.pk, "req-a1")
    ]
    assert [(row["action"], row["workspace_id"], row["request_id"]) for row in csv_rows] == [
        ("consent.granted", str(acme.pk), "req-a1")
    ]
    assert {row["request_id"] for row in everything} >= {"req-a1", "req-a2"}
    assert not {"req-g1", "req-n1"} & {row["request_id"] for row in everything}
    exported = rows("audit.exported")
    assert [row.changes["after"]["format"] for row in exported] == ["ndjson", "csv", "csv"]


def test_llm_call_exports_follow_the_outcome_filter_and_the_scope(audited_tenants, alice):
    acme, _ = audited_tenants
    client = verified_client(alice)

    exported = export_ndjson(client, "/admin/guardrails/llmcall/export.ndjson?outcome__exact=fallback")

    assert [(row["workspace_id"], row["outcome"], row["fallback_reason"]) for row in exported] == [
        (acme.pk, "fallback", "timeout")
    ]


def test_the_audit_list_filters_and_searches_by_request_id(audited_tenants, root):
    client = verified_client(root)

    by_request = client.get("/admin/guardrails/auditlog/?q=req-g1")
    by_actor = client.get("/admin/guardrails/auditlog/?actor=cli")
    page = client.get("/admin/guardrails/auditlog/")

    assert [row.request_id for row in by_request.context["cl"].result_list] == ["req-g1"]
    assert {row.action for row in by_actor.context["cl"].result_list} >= {"secret.rotated"}
    assert "Export CSV" in page.content.decode()


def test_an_admin_without_a_grant_cannot_export(audited_tenants):
    client = verified_client(AdminUserFactory(username="nobody"))

    assert client.get("/admin/guardrails/auditlog/export.csv").status_code == 403
    assert client.get("/admin/guardrails/llmcall/export.ndjson").status_code == 403


def test_csv_cells_that_look_like_formulas_are_quoted(acme, root):
    client = verified_client(root)
    client.post(f"/admin/onboarding/workspace/{acme.pk}/change/", {"name": "=HYPERLINK(1)"})

    exported = export_csv(client, "/admin/guardrails/auditlog/export.csv?action=admin.change")

    assert exported[0]["object_repr"] == "'=HYPERLINK(1)"


# --- Request ids -----------------------------------------------------------------------------


def test_every_response_carries_a_request_id_and_a_sane_one_sent_is_kept(segment):
    generated = segment("track", {"userId": "u-1", "event": "E"})
    kept = segment("track", {"userId": "u-1", "event": "E"}, HTTP_X_REQUEST_ID="lb-1234:abc")
    replaced = segment("track", {"userId": "u-1", "event": "E"}, HTTP_X_REQUEST_ID="bad id\nforged")

    assert len(generated["X-Request-ID"]) == 32
    assert kept["X-Request-ID"] == "lb-1234:abc"
    assert replaced["X-Request-ID"] != "bad id\nforged" and len(replaced["X-Request-ID"]) == 32
