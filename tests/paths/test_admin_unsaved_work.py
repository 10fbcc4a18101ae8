"""The path editor never throws away what a growth admin typed: Publish saves first, a refused
step keeps its values with the reason on the field, refusals are audited as refusals, and the
add form picks the admin's only workspace. (The browser side of the same: tests/e2e.)"""

import pytest

from paths import services
from paths.models import PathVersion
from tenancy import services as tenancy_services
from tenancy.models import AuditLog
from tests.conftest import verified_client
from tests.factories import AdminUserFactory
from tests.paths.test_admin import message_texts, step_form, version_post, version_url

pytestmark = pytest.mark.django_db

REFUSED_LINK = (
    "Must be a path, a web address or an app link (javascript:, data:, vbscript: links are refused)."
)


@pytest.fixture
def alice(acme):
    """An admin who may change Acme (and nothing else)."""
    user = AdminUserFactory(username="alice")
    tenancy_services.workspace_grant(workspace=acme, user=user, can_change=True)
    return user


@pytest.fixture
def client(alice):
    return verified_client(alice)


@pytest.fixture
def draft(acme) -> PathVersion:
    return services.path_create(workspace=acme, key="main", name="Main").versions.get()


def audit_rows(draft) -> list[tuple[str, dict]]:
    rows = AuditLog.objects.filter(object_type="paths.PathVersion", object_id=str(draft.pk)).order_by("pk")
    return [(row.action, row.changes) for row in rows]


# --- Publish saves first --------------------------------------------------------------------


def test_publish_from_the_editor_saves_the_typed_step_then_publishes_it(draft, client, alice):
    response = client.post(
        version_url(draft),
        {
            **version_post(draft, [step_form(0, key="connect", title="Connect", event_name="Connected")]),
            "_publish": "1",
        },
    )

    assert response.status_code == 302
    assert response["Location"] == version_url(draft)
    assert message_texts(response) == [
        "Step 'connect': no 'Connected' event was tracked in Acme in the last 90 days. Check the spelling.",
        "Main v1 published.",
    ]
    draft.refresh_from_db()
    assert (draft.status, draft.published_by) == ("published", alice)
    assert list(draft.steps.values_list("key", "title", "event_name")) == [
        ("connect", "Connect", "Connected")
    ]
    assert [action for action, _ in audit_rows(draft)] == ["admin.change", "admin.publish"]
    publish_changes = audit_rows(draft)[-1][1]
    assert (publish_changes["before"]["status"], publish_changes["after"]["status"]) == ("draft", "published")


def test_publish_of_an_unpublishable_draft_keeps_the_edits_saved_and_says_why(draft, client):
    response = client.post(
        version_url(draft),
        {**version_post(draft, [step_form(0, key="connect", title="Connect")]), "_publish": "1"},
    )

    assert response.status_code == 302
    assert message_texts(response) == [
        "Your changes were saved, but Main v1 cannot be published: "
        "step 'connect': an event step needs an event name"
    ]
    draft.refresh_from_db()
    assert draft.status == "draft"
    assert list(draft.steps.values_list("key", "title")) == [("connect", "Connect")]
    assert audit_rows(draft)[-1] == (
        "admin.publish_refused",
        {"reason": "step 'connect': an event step needs an event name"},
    )


def test_publish_of_an_editor_with_errors_publishes_nothing_and_keeps_what_was_typed(draft, client):
    response = client.post(
        version_url(draft),
        {
            **version_post(
                draft,
                [
                    step_form(
                        0, key="connect", title="Connect", event_name="Connected", deep_link="javascript:x"
                    )
                ],
            ),
            "_publish": "1",
        },
    )

    assert response.status_code == 200
    step = response.context["inline_admin_formsets"][0].formset.forms[0]
    assert step.errors == {"deep_link": [REFUSED_LINK]}
    assert (step["title"].value(), step["event_name"].value()) == ("Connect", "Connected")
    assert message_texts(response) == [
        "Not published, and nothing was saved: correct the errors below (what you typed is kept), "
        "then publish again."
    ]
    draft.refresh_from_db()
    assert (draft.status, draft.steps.count()) == ("draft", 0)
    assert audit_rows(draft) == [
        ("admin.publish_refused", {"reason": "the form has errors; nothing was saved"})
    ]


# --- A refused deep link is shown on its field ----------------------------------------------


def test_a_javascript_deep_link_is_refused_on_its_field_and_the_new_step_keeps_its_values(draft, client):
    typed = {
        "key": "connect",
        "title": "Connect GitHub",
        "body": "Link your repos.",
        "event_name": "Connected",
    }

    response = client.post(
        version_url(draft),
        version_post(draft, [step_form(0, deep_link="JavaScript:alert(document.cookie)", **typed)]),
    )

    assert response.status_code == 200
    step = response.context["inline_admin_formsets"][0].formset.forms[0]
    assert step.errors == {"deep_link": [REFUSED_LINK]}
    assert {name: step[name].value() for name in typed} == typed
    assert step["deep_link"].value() == "JavaScript:alert(document.cookie)"
    assert message_texts(response) == []  # no page banner: the reason is on the field
    assert not draft.steps.exists()


# --- Refusals are audited as refusals -------------------------------------------------------


def test_a_refused_publish_button_is_audited_as_refused_with_the_reason(draft, client):
    client.post(version_url(draft, "publish"))
    client.post(version_url(draft, "publish"))

    assert (
        audit_rows(draft)
        == [
            ("admin.publish_refused", {"reason": "a version needs at least one step to be published"}),
        ]
        * 2
    )
    assert not AuditLog.objects.filter(action="admin.publish").exists()


def test_a_refused_publish_from_the_changelist_is_audited_as_refused(acme, draft, client):
    other = services.path_create(workspace=acme, key="other", name="Other").versions.get()
    services.step_create(path_version=other, key="connect", title="Connect", event_name="Connected")

    client.post("/admin/paths/pathversion/", {"action": "publish", "_selected_action": [draft.pk, other.pk]})

    assert audit_rows(draft) == [
        ("admin.action.publish_refused", {"reason": "a version needs at least one step to be published"})
    ]
    assert [action for action, _ in audit_rows(other)] == ["admin.action.publish"]


# --- The add form picks the only workspace --------------------------------------------------


def test_the_add_form_preselects_the_admins_only_workspace(acme, client):
    form = client.get("/admin/paths/path/add/").context["adminform"].form

    assert form["workspace"].value() == acme.pk


def test_the_add_form_leaves_the_choice_to_an_admin_of_two_workspaces(acme, globex, alice, client):
    tenancy_services.workspace_grant(workspace=globex, user=alice, can_change=True)

    form = client.get("/admin/paths/path/add/").context["adminform"].form

    assert form["workspace"].value() is None
