"""The nudges admin as growth admins use it: scoping to granted workspaces, settings, triggers
edited per kind, channel providers without secrets. Fixtures here serve the other admin tests."""

import pytest
from guardian.shortcuts import assign_perm

from nudges.models import ChannelProvider, NudgeSettings, Trigger
from tenancy import services
from tenancy.models import Workspace
from tests.conftest import listed, verified_client
from tests.factories import AdminUserFactory, EndUserFactory
from tests.nudges.factories import (
    ChannelProviderFactory,
    FailedNudgeFactory,
    NudgeFactory,
    NudgeSettingsFactory,
    NudgeTemplateFactory,
    ProviderWithSecretFactory,
    TemplateVersionFactory,
    TriggerFactory,
)

pytestmark = pytest.mark.django_db

CHANGELISTS = {
    "nudgesettings": "/admin/nudges/nudgesettings/",
    "trigger": "/admin/nudges/trigger/",
    "nudgetemplate": "/admin/nudges/nudgetemplate/",
    "templateversion": "/admin/nudges/templateversion/",
    "channelprovider": "/admin/nudges/channelprovider/",
    "nudge": "/admin/nudges/nudge/",
}
DEAD_LETTERS = "/admin/nudges/nudge/?status__exact=failed"


@pytest.fixture
def acme(tenant) -> Workspace:
    NudgeSettingsFactory(workspace=tenant[0])
    return tenant[0]


@pytest.fixture
def globex(other_tenant) -> Workspace:
    NudgeSettingsFactory(workspace=other_tenant[0], postal_address="Globex Corp, 9 Elm Street")
    return other_tenant[0]


@pytest.fixture
def alice(acme):
    """Writes templates in Acme (change grant, no approve permission)."""
    user = AdminUserFactory(username="alice")
    services.workspace_grant(workspace=acme, user=user, can_change=True)
    return user


@pytest.fixture
def bob(acme):
    """Approves Acme's templates."""
    user = AdminUserFactory(username="bob")
    services.workspace_grant(workspace=acme, user=user, can_change=True)
    assign_perm("onboarding.approve_nudge_templates", user, acme)
    return user


@pytest.fixture
def client(alice):
    return verified_client(alice)


def tenant_objects(workspace: Workspace, label: str) -> dict:
    trigger = TriggerFactory(workspace=workspace, name=f"{label} stuck trigger")
    template = NudgeTemplateFactory(trigger=trigger, name=f"{label} stuck email")
    version = TemplateVersionFactory(template=template, number=1)
    end_user = EndUserFactory(workspace=workspace, external_id=f"{label.lower()}-user")
    return {
        "trigger": trigger,
        "nudgetemplate": template,
        "templateversion": version,
        "channelprovider": ChannelProviderFactory(workspace=workspace),
        "nudgesettings": workspace.nudge_settings,
        "nudge": NudgeFactory(trigger=trigger, end_user=end_user, template_version=version),
        "dead_letter": FailedNudgeFactory(trigger=trigger, end_user=end_user, template_version=version),
    }


# --- Scoping -------------------------------------------------------------------------------------------


def test_an_admin_sees_only_the_granted_workspaces_nudge_objects(acme, globex, client):
    ours = tenant_objects(acme, "Acme")
    tenant_objects(globex, "Globex")

    for name, path in CHANGELISTS.items():
        rows = listed(client.get(path))
        expected = [ours[name]] if name != "nudge" else [ours["dead_letter"], ours["nudge"]]
        assert rows == expected, name
        content = client.get(path).content.decode()
        assert "Globex" not in content, name
        assert "globex-user" not in content, name
    assert listed(client.get(DEAD_LETTERS)) == [ours["dead_letter"]]


def test_another_workspaces_nudge_objects_cannot_be_opened_by_url(acme, globex, client):
    theirs = tenant_objects(globex, "Globex")

    for name in CHANGELISTS:
        response = client.get(f"/admin/nudges/{name}/{theirs[name].pk}/change/", follow=True)
        assert response.redirect_chain == [("/admin/", 302)], name
        assert "Globex" not in response.content.decode()
    version = theirs["templateversion"]
    assert (
        client.get(f"/admin/nudges/templateversion/{version.pk}/preview/?user=globex-user").status_code == 404
    )
    for button in ("approve", "activate", "retire", "new-draft"):
        assert client.post(f"/admin/nudges/templateversion/{version.pk}/{button}/").status_code == 404
    template = theirs["nudgetemplate"]
    assert client.post(f"/admin/nudges/nudgetemplate/{template.pk}/new-draft/").status_code == 404
    assert template.versions.count() == 1


def test_an_admin_without_a_grant_sees_no_nudges_admin(acme):
    tenant_objects(acme, "Acme")
    client = verified_client(AdminUserFactory(username="nobody"))

    assert all(app["app_label"] != "nudges" for app in client.get("/admin/").context["app_list"])
    for path in CHANGELISTS.values():
        assert client.get(path).status_code == 403, path
    assert client.get("/admin/nudges/").status_code == 404


def test_a_view_only_grant_reads_but_cannot_add_a_trigger_or_retry(acme):
    objects = tenant_objects(acme, "Acme")
    viewer = AdminUserFactory(username="viewer")
    services.workspace_grant(workspace=acme, user=viewer, can_change=False)
    client = verified_client(viewer)

    assert listed(client.get(CHANGELISTS["trigger"])) == [objects["trigger"]]
    assert client.get("/admin/nudges/trigger/add/").status_code == 403
    assert listed(client.get(DEAD_LETTERS)) == [objects["dead_letter"]]
    assert client.get(DEAD_LETTERS).context["action_form"] is None  # no retry action


# --- Nudge settings ---------------------------------------------------------------------------------


def test_nudge_settings_take_one_domain_or_word_per_line(acme, client):
    settings_row = acme.nudge_settings

    response = client.post(
        f"/admin/nudges/nudgesettings/{settings_row.pk}/change/",
        {
            "postal_address": "Acme Inc., 1 Market Street",
            "allowed_link_domains": "app.example.com\n*.docs.example.com\n",
            "banned_words": "free, act now\nguaranteed",
            "sms_opt_out_text": "Reply STOP to opt out.",
            "conversion_window_hours": "48",
            "personalisation_enabled": "on",
        },
    )

    assert response.status_code == 302
    settings_row.refresh_from_db()
    assert settings_row.allowed_link_domains == ["app.example.com", "docs.example.com"]
    assert settings_row.banned_words == ["free", "act now", "guaranteed"]


def test_nudge_settings_refuse_a_url_as_a_domain(acme, client):
    response = client.post(
        f"/admin/nudges/nudgesettings/{acme.nudge_settings.pk}/change/",
        {
            "postal_address": "x",
            "allowed_link_domains": "https://app.example.com/path",
            "sms_opt_out_text": "Reply STOP",
            "conversion_window_hours": "48",
        },
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors["allowed_link_domains"] == [
        "Not a domain name: https://app.example.com/path (write app.example.com, without https:// or a path)."
    ]


# --- Triggers: settings per kind ----------------------------------------------------------------------


def trigger_post(workspace, **fields):
    return {
        "workspace": workspace.pk,
        "name": "Trigger",
        "kind": "inactivity",
        "channel_order": "in_app, email",
        "purpose": "onboarding",
        "is_active": "on",
        **fields,
    }


@pytest.mark.parametrize(
    ("fields", "config"),
    [
        ({"kind": "inactivity", "days": "5"}, {"days": 5}),
        ({"kind": "reengagement", "days": "14"}, {"days": 14}),
        ({"kind": "milestone", "step": "connect"}, {"step": "connect"}),
        ({"kind": "milestone", "percent": "50"}, {"percent": 50}),
        ({"kind": "welcome", "days": "9"}, {}),
        (
            {
                "kind": "custom",
                "event_a": "Cart Viewed",
                "event_b": "Order Completed",
                "window_hours": "24",
                "conditions_a": '[{"property": "total", "operator": "gte", "value": 20}]',
            },
            {
                "event_a": "Cart Viewed",
                "event_b": "Order Completed",
                "window_hours": 24,
                "conditions_a": [{"property": "total", "operator": "gte", "value": 20}],
            },
        ),
    ],
)
def test_a_trigger_is_configured_with_the_fields_of_its_kind(acme, client, fields, config):
    response = client.post("/admin/nudges/trigger/add/", trigger_post(acme, **fields))

    assert response.status_code == 302, response.context["adminform"].form.errors
    trigger = Trigger.objects.get(workspace=acme)
    assert (trigger.config, trigger.channels) == (config, ["in_app", "email"])


@pytest.mark.parametrize(
    ("fields", "errors"),
    [
        (
            {"kind": "milestone", "step": "connect", "percent": "50"},
            {"__all__": ["give either a step key or a percent"]},
        ),
        ({"kind": "milestone"}, {"__all__": ["give either a step key or a percent"]}),
        ({"kind": "inactivity", "days": "0"}, {"days": ["Ensure this value is greater than or equal to 1."]}),
        (
            {"kind": "custom", "event_a": "Cart Viewed"},
            {
                "event_b": ["an event name"],
                "window_hours": ["a number of hours, more than 0 and at most 2160 (90 days)"],
            },
        ),
        (
            {"channel_order": "email, fax"},
            {"channel_order": ["Unknown channel: fax. Choices: email, sms, push, in_app, intercom."]},
        ),
    ],
)
def test_a_trigger_with_bad_settings_is_refused_with_the_field(acme, client, fields, errors):
    response = client.post("/admin/nudges/trigger/add/", trigger_post(acme, **fields))

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == errors
    assert not Trigger.objects.exists()


def test_a_trigger_of_another_workspace_cannot_be_created(acme, globex, client):
    response = client.post("/admin/nudges/trigger/add/", trigger_post(globex, days="3"))

    assert response.status_code == 200
    assert "workspace" in response.context["adminform"].form.errors
    assert not Trigger.objects.exists()


def test_the_trigger_page_shows_its_settings_in_its_fields(acme, client):
    trigger = TriggerFactory(
        workspace=acme, kind="custom", config={"event_a": "A", "event_b": "B", "window_hours": 2}
    )

    page = client.get(f"/admin/nudges/trigger/{trigger.pk}/change/")
    form = page.context["adminform"].form

    assert (form["event_a"].value(), form["event_b"].value(), form["window_hours"].value()) == ("A", "B", 2)
    assert "A without B within 2 h" in client.get("/admin/nudges/trigger/").content.decode()


# --- Channel providers ------------------------------------------------------------------------------


def provider_post(workspace, **fields):
    return {
        "workspace": workspace.pk,
        "channel": "email",
        "provider": "sendgrid",
        "priority": "1",
        "region": "us",
        "settings": '{"from_email": "hello@acme.test"}',
        "secret_name": "sendgrid_api_key",
        "is_active": "on",
        **fields,
    }


def test_a_provider_is_added_with_settings_and_the_name_of_its_secret(acme, client):
    response = client.post("/admin/nudges/channelprovider/add/", provider_post(acme))

    assert response.status_code == 302
    provider = ChannelProvider.objects.get(workspace=acme)
    assert (provider.settings, provider.secret_name) == (
        {"from_email": "hello@acme.test"},
        "sendgrid_api_key",
    )


def test_provider_settings_refuse_secrets_and_a_provider_of_another_channel(acme, client):
    response = client.post(
        "/admin/nudges/channelprovider/add/",
        provider_post(acme, channel="sms", settings='{"api_key": "SG.x", "auth_token": "t"}'),
    )

    errors = response.context["adminform"].form.errors
    assert errors["settings"] == [
        "api_key, auth_token would hold a secret: store it as a workspace secret and put its name in "
        "“secret name” (or a key ending in _secret)."
    ]
    assert errors["provider"] == ["SendGrid delivers email, not sms."]
    assert not ChannelProvider.objects.exists()


def test_the_provider_page_says_whether_its_secret_is_stored_never_its_value(acme, client):
    stored = ProviderWithSecretFactory(workspace=acme, secret="SG.very-secret-value")
    missing = ChannelProviderFactory(workspace=acme, secret_name="not_there")

    page = client.get(f"/admin/nudges/channelprovider/{stored.pk}/change/").content.decode()
    assert f"stored (workspace secret “{stored.secret_name}”)" in page
    assert "SG.very-secret-value" not in page
    other = client.get(f"/admin/nudges/channelprovider/{missing.pk}/change/").content.decode()
    assert "no workspace secret named “not_there”" in other


def test_settings_of_a_new_workspace_can_be_added(acme, alice, client):
    fresh = Workspace.objects.create(name="Initech", slug="initech")
    services.workspace_grant(workspace=fresh, user=alice, can_change=True)

    response = client.post(
        "/admin/nudges/nudgesettings/add/",
        {
            "workspace": fresh.pk,
            "postal_address": "Initech, 4120 Freidrich Lane",
            "allowed_link_domains": "initech.example",
            "sms_opt_out_text": "Reply STOP to opt out.",
            "conversion_window_hours": "48",
        },
    )

    assert response.status_code == 302
    assert NudgeSettings.objects.get(workspace=fresh).postal_address == "Initech, 4120 Freidrich Lane"


def test_a_custom_triggers_property_conditions_are_validated(acme, client):
    fields = {"kind": "custom", "event_a": "Cart Viewed", "event_b": "Order Completed", "window_hours": "1.5"}

    bad = client.post(
        "/admin/nudges/trigger/add/",
        trigger_post(acme, conditions_a='[{"property": "total", "operator": "bogus"}]', **fields),
    )
    not_a_list = client.post(
        "/admin/nudges/trigger/add/", trigger_post(acme, conditions_a='{"total": 1}', **fields)
    )

    assert bad.context["adminform"].form.errors["conditions_a"][0].startswith("condition 1: ")
    assert not_a_list.context["adminform"].form.errors["conditions_a"] == ["a list of conditions"]
    assert not Trigger.objects.exists()
    client.post("/admin/nudges/trigger/add/", trigger_post(acme, **fields))
    assert Trigger.objects.get().config["window_hours"] == 1.5
