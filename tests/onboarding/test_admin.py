"""The admin as a growth admin uses it: TOTP login, workspace scoping, keys, users and events."""

from datetime import UTC, datetime

import pytest
from django.contrib.admin.models import LogEntry
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from onboarding.models import AnonymousIdentity, Contact, Event
from tenancy import services
from tenancy.keys import key_digest
from tenancy.models import ApiKey, Workspace
from tests.conftest import basic_auth, listed, post_action, verified_client
from tests.factories import AdminUserFactory, EndUserFactory, EventFactory

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


def current_token(device: TOTPDevice, drift: int = 0) -> str:
    value = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=drift)
    return str(value).zfill(device.digits)


@pytest.fixture
def acme(tenant) -> Workspace:
    return tenant[0]


@pytest.fixture
def globex(other_tenant) -> Workspace:
    return other_tenant[0]


@pytest.fixture
def two_tenants(acme, globex):
    """Acme and Globex, each with its two default keys, one end user and one event."""
    ada = EndUserFactory(workspace=acme, external_id="ada")
    grace = EndUserFactory(workspace=globex, external_id="grace")
    EventFactory(end_user=ada, name="Signed Up", message_id="acme-1")
    EventFactory(end_user=grace, name="Globex Only Event", message_id="globex-1")
    return acme, globex


# --- Password plus TOTP ---------------------------------------------------------------------


def test_login_form_asks_for_a_device_and_a_token():
    response = Client().get("/admin/login/")

    assert response.status_code == 200
    form = response.context["form"]
    assert {"username", "password", "otp_device", "otp_token"} <= set(form.fields)


def test_the_right_password_without_a_device_does_not_open_the_admin():
    user = AdminUserFactory(is_superuser=True)
    client = Client()

    response = client.post(
        "/admin/login/",
        {"username": user.username, "password": PASSWORD, "otp_token": "123456", "next": "/admin/"},
    )

    assert response.status_code == 200
    assert response.context["form"].errors["__all__"] == [
        "No authenticator app is enrolled for this account. An administrator enrols one with: "
        "python manage.py otp_enrol --username <name>"
    ]
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302


def test_one_authenticator_app_needs_no_device_choice_at_login():
    user = AdminUserFactory(is_superuser=True)
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client = Client()

    response = client.post(
        "/admin/login/",
        {
            "username": user.username,
            "password": PASSWORD,
            "otp_token": current_token(device),
            "next": "/admin/",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.get("/admin/").status_code == 200


def test_a_password_session_without_a_verified_device_reaches_no_admin_page():
    user = AdminUserFactory(is_superuser=True)
    TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client = Client()
    client.force_login(user)

    for path in ("/admin/", "/admin/onboarding/event/", "/admin/onboarding/apikey/add/"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"] == f"/admin/login/?next={path}"


def test_a_wrong_totp_token_fails_the_login():
    user = AdminUserFactory(is_superuser=True)
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    accepted = {current_token(device, drift) for drift in (-1, 0, 1)}
    wrong = next(token for token in ("000000", "111111", "222222", "333333") if token not in accepted)
    client = Client()

    response = client.post(
        "/admin/login/",
        {
            "username": user.username,
            "password": PASSWORD,
            "otp_device": device.persistent_id,
            "otp_token": wrong,
            "next": "/admin/",
        },
    )

    assert response.status_code == 200
    assert response.context["form"].errors["__all__"] == [
        "Invalid token. Please make sure you have entered it correctly."
    ]
    assert client.get("/admin/").status_code == 302


def test_password_and_current_totp_token_log_in_and_admin_pages_render(two_tenants):
    user = AdminUserFactory(is_superuser=True)
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client = Client()
    login_page = client.get("/admin/login/?next=/admin/")
    assert login_page.status_code == 200

    response = client.post(
        "/admin/login/",
        {
            "username": user.username,
            "password": PASSWORD,
            "otp_device": device.persistent_id,
            "otp_token": current_token(device),
            "next": "/admin/",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == "/admin/"
    assert client.session[DEVICE_ID_SESSION_KEY] == device.persistent_id
    index = client.get("/admin/")
    assert index.status_code == 200
    # The index groups the models by the team's workflow (config/admin_navigation.py), not by app.
    sections = {section["name"]: section for section in index.context["app_list"]}
    models_of = {
        name: [model["object_name"] for model in section["models"]] for name, section in sections.items()
    }
    assert models_of["People & progress"][:5] == [
        "AnswerTotal",
        "EndUser",
        "EnrollmentSignal",
        "Enrollment",
        "Event",
    ]
    assert {"ApiKey", "Workspace"} <= set(models_of["Settings"])
    for path in (
        "/admin/onboarding/workspace/",
        "/admin/onboarding/apikey/",
        "/admin/onboarding/enduser/",
        "/admin/onboarding/event/",
        "/admin/onboarding/apikey/add/",
        "/admin/onboarding/enrollmentsignal/",
        "/admin/onboarding/enrollment/",
        "/admin/onboarding/answertotal/",
    ):
        assert client.get(path).status_code == 200, path


# --- Workspace scoping (django-guardian) ----------------------------------------------------


CHANGELISTS = (
    "/admin/onboarding/workspace/",
    "/admin/onboarding/apikey/",
    "/admin/onboarding/enduser/",
    "/admin/onboarding/event/",
)


def test_an_admin_sees_only_the_granted_workspace_in_every_changelist(two_tenants):
    acme, _ = two_tenants
    alice = AdminUserFactory(username="alice")
    services.workspace_grant(workspace=acme, user=alice, can_change=True)
    client = verified_client(alice)

    assert [workspace.name for workspace in listed(client.get(CHANGELISTS[0]))] == ["Acme"]
    assert sorted((key.workspace.name, key.name) for key in listed(client.get(CHANGELISTS[1]))) == [
        ("Acme", "Default secret key"),
        ("Acme", "Default write key"),
    ]
    assert [str(end_user) for end_user in listed(client.get(CHANGELISTS[2]))] == ["ada"]
    assert [event.message_id for event in listed(client.get(CHANGELISTS[3]))] == ["acme-1"]
    for path in CHANGELISTS:
        content = client.get(path).content.decode()
        assert "Globex" not in content, path
        assert "grace" not in content, path


def test_another_workspaces_objects_cannot_be_opened_by_url(two_tenants):
    acme, globex = two_tenants
    alice = AdminUserFactory(username="alice")
    services.workspace_grant(workspace=acme, user=alice, can_change=True)
    client = verified_client(alice)
    globex_objects = {
        "workspace": globex,
        "apikey": ApiKey.objects.filter(workspace=globex).first(),
        "enduser": globex.end_users.get(),
        "event": Event.objects.get(workspace=globex),
    }

    for model_name, obj in globex_objects.items():
        for suffix in ("change/", "history/"):
            path = f"/admin/onboarding/{model_name}/{obj.pk}/{suffix}"
            response = client.get(path, follow=True)
            assert response.redirect_chain == [("/admin/", 302)], path
            content = response.content.decode()
            assert "doesn\u2019t exist" in content
            assert "Globex" not in content
            assert "grace" not in content
    assert client.get(f"/admin/onboarding/workspace/{globex.pk}/permissions/")["Location"] == "/admin/"


def test_another_workspace_cannot_be_changed_or_given_a_key(two_tenants):
    acme, globex = two_tenants
    alice = AdminUserFactory(username="alice")
    services.workspace_grant(workspace=acme, user=alice, can_change=True)
    client = verified_client(alice)

    client.post(f"/admin/onboarding/workspace/{globex.pk}/change/", {"name": "Hacked"})
    response = client.post(
        "/admin/onboarding/apikey/add/", {"workspace": globex.pk, "name": "Sneaky", "kind": "secret"}
    )

    assert Workspace.objects.get(pk=globex.pk).name == "Globex"
    assert response.status_code == 200
    assert "workspace" in response.context["adminform"].form.errors
    assert not ApiKey.objects.filter(name="Sneaky").exists()
    assert list(response.context["adminform"].form.fields["workspace"].queryset) == [acme]


def test_a_view_only_grant_can_read_but_not_change_add_or_revoke(two_tenants):
    acme, _ = two_tenants
    victor = AdminUserFactory(username="victor")
    services.workspace_grant(workspace=acme, user=victor, can_change=False)
    client = verified_client(victor)
    write_key = ApiKey.objects.get(workspace=acme, kind=ApiKey.Kind.WRITE)

    changelist = client.get("/admin/onboarding/apikey/")
    change_page = client.get(f"/admin/onboarding/apikey/{write_key.pk}/change/")
    assert len(listed(changelist)) == 2
    assert changelist.context["has_add_permission"] is False
    assert "Revoke selected keys" not in changelist.content.decode()
    assert change_page.status_code == 200
    assert change_page.context["has_change_permission"] is False

    responses = [
        client.get("/admin/onboarding/apikey/add/"),
        client.post("/admin/onboarding/apikey/add/", {"workspace": acme.pk, "name": "New", "kind": "write"}),
        client.post(f"/admin/onboarding/apikey/{write_key.pk}/change/", {"name": "Renamed"}),
        client.post(f"/admin/onboarding/workspace/{acme.pk}/change/", {"name": "Renamed"}),
    ]
    post_action(client, "/admin/onboarding/apikey/", "revoke", [write_key])

    assert [response.status_code for response in responses] == [403, 403, 403, 403]
    write_key.refresh_from_db()
    assert (write_key.name, write_key.revoked_at) == ("Default write key", None)
    assert ApiKey.objects.filter(workspace=acme).count() == 2
    assert Workspace.objects.get(pk=acme.pk).name == "Acme"


def test_a_change_grant_on_one_workspace_does_not_revoke_keys_of_a_view_only_one(two_tenants):
    acme, globex = two_tenants
    alice = AdminUserFactory(username="alice")
    services.workspace_grant(workspace=acme, user=alice, can_change=True)
    services.workspace_grant(workspace=globex, user=alice, can_change=False)
    client = verified_client(alice)
    acme_key = ApiKey.objects.get(workspace=acme, kind=ApiKey.Kind.WRITE)
    globex_key = ApiKey.objects.get(workspace=globex, kind=ApiKey.Kind.WRITE)

    response = post_action(client, "/admin/onboarding/apikey/", "revoke", [acme_key, globex_key])

    assert response.status_code == 302
    acme_key.refresh_from_db()
    globex_key.refresh_from_db()
    assert acme_key.revoked_at is not None
    assert globex_key.revoked_at is None
    messages = [str(message) for message in client.get("/admin/onboarding/apikey/").context["messages"]]
    assert messages == [f"You may not revoke {globex_key}.", "Revoked 1 key(s)."]


def test_a_change_grant_does_not_open_the_object_permissions_page(two_tenants):
    acme, _ = two_tenants
    alice = AdminUserFactory(username="alice")
    services.workspace_grant(workspace=acme, user=alice, can_change=True)
    client = verified_client(alice)

    response = client.get(f"/admin/onboarding/workspace/{acme.pk}/permissions/")

    assert response.status_code == 302
    assert response["Location"] == "/admin/"


def test_a_superuser_sees_every_workspace(two_tenants):
    client = verified_client(AdminUserFactory(is_superuser=True))

    assert [workspace.name for workspace in listed(client.get(CHANGELISTS[0]))] == ["Acme", "Globex"]
    assert len(listed(client.get(CHANGELISTS[1]))) == 4
    assert sorted(str(end_user) for end_user in listed(client.get(CHANGELISTS[2]))) == ["ada", "grace"]
    assert sorted(event.message_id for event in listed(client.get(CHANGELISTS[3]))) == [
        "acme-1",
        "globex-1",
    ]


def test_an_admin_without_any_grant_sees_no_onboarding_models(two_tenants):
    client = verified_client(AdminUserFactory(username="nobody"))

    index = client.get("/admin/")

    assert index.status_code == 200
    assert index.context["app_list"] == []
    for path in CHANGELISTS:
        assert client.get(path).status_code == 403, path
    assert client.get("/admin/onboarding/").status_code == 404


# --- API keys -------------------------------------------------------------------------------


def test_a_key_created_in_the_admin_is_shown_once_stored_hashed_and_revocable(acme, api_client):
    alice = AdminUserFactory(username="alice")
    services.workspace_grant(workspace=acme, user=alice, can_change=True)
    client = verified_client(alice)

    response = client.post(
        "/admin/onboarding/apikey/add/", {"workspace": acme.pk, "name": "Mobile app", "kind": "write"}
    )

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    key = response.context["key"]
    api_key = ApiKey.objects.get(name="Mobile app")
    assert key.startswith("wk_")
    assert response.content.decode().count(key) == 1
    assert (api_key.workspace, api_key.kind, api_key.created_by) == (acme, "write", alice)
    assert api_key.key_digest == key_digest(key)
    assert api_key.prefix == key[:11]
    assert LogEntry.objects.get().object_repr == f"Mobile app ({key[:11]}…)"
    assert key not in client.get(f"/admin/onboarding/apikey/{api_key.pk}/change/").content.decode()
    assert key not in client.get("/admin/onboarding/apikey/").content.decode()

    track = {"userId": "u-1", "event": "Signed Up", "messageId": "m-1"}
    accepted = api_client.post("/v1/track", track, format="json", HTTP_AUTHORIZATION=basic_auth(key))
    assert accepted.status_code == 200

    revoked = post_action(client, "/admin/onboarding/apikey/", "revoke", [api_key])
    assert revoked.status_code == 302
    rejected = api_client.post(
        "/v1/track", {**track, "messageId": "m-2"}, format="json", HTTP_AUTHORIZATION=basic_auth(key)
    )
    assert rejected.status_code == 401
    assert list(Event.objects.filter(workspace=acme).values_list("message_id", flat=True)) == ["m-1"]
    revoked_list = listed(client.get("/admin/onboarding/apikey/?status=revoked"))
    active_list = listed(client.get("/admin/onboarding/apikey/?status=active"))
    assert [key.name for key in revoked_list] == ["Mobile app"]
    assert sorted(key.name for key in active_list) == ["Default secret key", "Default write key"]


# --- Events ---------------------------------------------------------------------------------


@pytest.fixture
def events(acme):
    ada = EndUserFactory(workspace=acme, external_id="ada")
    anonymous = EndUserFactory(workspace=acme, external_id=None)
    bob = EndUserFactory(workspace=acme, external_id="bob")

    def at(day: int):
        return datetime(2024, 3, day, 10, 0, tzinfo=UTC)

    return [
        EventFactory(end_user=ada, name="Signed Up", message_id="e1", timestamp=at(1)),
        EventFactory(end_user=ada, name="Project Created", message_id="e2", timestamp=at(2)),
        EventFactory(
            end_user=anonymous,
            name="Signed Up",
            message_id="e3",
            user_id="",
            anonymous_id="anon-7",
            timestamp=at(3),
        ),
        EventFactory(end_user=bob, name="Project Created", message_id="e4", timestamp=at(4)),
    ]


def event_ids(client: Client, query: str) -> list[str]:
    return [event.message_id for event in listed(client.get(f"/admin/onboarding/event/?{query}"))]


def test_events_are_read_only(events):
    client = verified_client(AdminUserFactory(is_superuser=True))
    event = events[0]

    changelist = client.get("/admin/onboarding/event/")
    change_page = client.get(f"/admin/onboarding/event/{event.pk}/change/")
    responses = [
        client.get("/admin/onboarding/event/add/"),
        client.post(f"/admin/onboarding/event/{event.pk}/change/", {"name": "Tampered"}),
        client.get(f"/admin/onboarding/event/{event.pk}/delete/"),
        client.post(f"/admin/onboarding/event/{event.pk}/delete/", {"post": "yes"}),
    ]

    assert changelist.context["has_add_permission"] is False
    assert change_page.status_code == 200
    assert change_page.context["has_change_permission"] is False
    assert change_page.context["has_delete_permission"] is False
    assert [response.status_code for response in responses] == [403, 403, 403, 403]
    assert Event.objects.get(pk=event.pk).name == "Signed Up"
    assert Event.objects.count() == 4


def test_events_filter_by_name_user_and_time(events):
    ada = events[0].end_user
    AnonymousIdentity.objects.create(workspace=ada.workspace, end_user=ada, anonymous_id="ada-laptop")
    client = verified_client(AdminUserFactory(is_superuser=True))

    assert event_ids(client, "") == ["e4", "e3", "e2", "e1"]
    assert event_ids(client, "name=Signed+Up") == ["e3", "e1"]
    assert event_ids(client, "name=Nothing") == []
    assert event_ids(client, "user=ada") == ["e2", "e1"]
    assert event_ids(client, "user=anon-7") == ["e3"]
    assert event_ids(client, "user=ada-laptop") == ["e2", "e1"]
    assert event_ids(client, "user=ada&name=Project+Created") == ["e2"]
    time_range = (
        "timestamp__range__gte_0=2024-03-02&timestamp__range__gte_1=00:00:00"
        "&timestamp__range__lte_0=2024-03-03&timestamp__range__lte_1=23:59:59"
    )
    assert event_ids(client, time_range) == ["e3", "e2"]
    assert event_ids(client, f"{time_range}&name=Signed+Up") == ["e3"]


def test_event_filter_forms_keep_the_other_filters(events):
    client = verified_client(AdminUserFactory(is_superuser=True))

    content = client.get("/admin/onboarding/event/?user=ada&type__exact=track").content.decode()

    assert '<input type="hidden" name="user" value="ada">' in content
    assert '<input type="hidden" name="type__exact" value="track">' in content
    assert 'name="timestamp__range__gte_0"' in content


def test_event_changelist_renders_with_facet_counts(events):
    client = verified_client(AdminUserFactory(is_superuser=True))

    response = client.get("/admin/onboarding/event/?_facets=True&name=Signed+Up")

    assert response.status_code == 200
    assert [event.message_id for event in response.context["cl"].result_list] == ["e3", "e1"]


# --- End users ------------------------------------------------------------------------------


def test_end_user_page_shows_contact_on_file_without_the_values_and_recent_events(events):
    end_user = events[0].end_user
    Contact.objects.create(
        end_user=end_user, email="ada@example.com", phone="+14155552671", name="Ada Lovelace"
    )
    AnonymousIdentity.objects.create(workspace=end_user.workspace, end_user=end_user, anonymous_id="anon-1")
    client = verified_client(AdminUserFactory(is_superuser=True))

    response = client.get(f"/admin/onboarding/enduser/{end_user.pk}/change/")

    assert response.status_code == 200
    content = response.content.decode()
    assert "contact on file" in content.lower()
    assert "email, phone, name" in content
    for secret in ("ada@example.com", "+14155552671", "Lovelace"):
        assert secret not in content
    assert "<td>2024-03-02 10:00:00</td><td>track</td><td>Project Created</td>" in content
    assert "<td>2024-03-01 10:00:00</td><td>track</td><td>Signed Up</td>" in content
    assert content.index("Project Created") < content.index("Signed Up")
    assert "anon-1" in content
    assert response.context["has_change_permission"] is False


def test_end_user_without_contact_shows_none(events):
    end_user = events[3].end_user
    client = verified_client(AdminUserFactory(is_superuser=True))

    response = client.get(f"/admin/onboarding/enduser/{end_user.pk}/change/")

    assert response.status_code == 200
    fieldset = response.context["adminform"]
    values = {field.field["name"]: field.contents() for line in fieldset for row in line for field in row}
    assert values["contact_on_file"] == "none"


# --- Workspaces -----------------------------------------------------------------------------


def test_a_superuser_creates_a_workspace_and_sees_both_keys_once():
    client = verified_client(AdminUserFactory(is_superuser=True))

    response = client.post("/admin/onboarding/workspace/add/", {"name": "Initech"})

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    workspace = Workspace.objects.get(name="Initech")
    assert workspace.slug == "initech"
    keys = [issued.key for issued in response.context["issued"]]
    assert [key[:3] for key in keys] == ["wk_", "sk_"]
    content = response.content.decode()
    assert [content.count(key) for key in keys] == [1, 1]
    assert sorted(ApiKey.objects.filter(workspace=workspace).values_list("key_digest", flat=True)) == sorted(
        key_digest(key) for key in keys
    )
    assert keys[0] not in client.get(f"/admin/onboarding/workspace/{workspace.pk}/change/").content.decode()


def test_only_a_superuser_creates_workspaces(acme):
    alice = AdminUserFactory(username="alice")
    services.workspace_grant(workspace=acme, user=alice, can_change=True)
    client = verified_client(alice)

    response = client.post("/admin/onboarding/workspace/add/", {"name": "Initech"})

    assert response.status_code == 403
    assert not Workspace.objects.filter(name="Initech").exists()


def test_end_user_page_says_why_the_user_is_on_their_path(tenant):
    from tests.onboarding.engine_paths import onboarding_path
    from tests.onboarding.test_ingest_api import basic_auth

    workspace, write_key, _ = tenant
    onboarding_path(workspace)
    Client().post(
        "/v1/identify",
        {"userId": "u-7", "traits": {"persona": "admin"}},
        content_type="application/json",
        HTTP_AUTHORIZATION=basic_auth(write_key),
    )
    end_user = workspace.end_users.get(external_id="u-7")
    client = verified_client(AdminUserFactory(is_superuser=True))

    content = client.get(f"/admin/onboarding/enduser/{end_user.pk}/change/").content.decode()

    assert "<th>why this path</th>" in content
    assert "<td>active</td><td>create</td><td>1</td>" in content
    assert "no audience matched; workspace default path &#x27;basics&#x27;" in content
