"""The path editor as a growth admin uses it: TOTP-verified, scoped to granted workspaces."""

import html
import re
from html.parser import HTMLParser

import pytest
from django.contrib.messages import get_messages

from paths import services
from paths.models import Path, PathVersion
from paths.steps import step_as_dict
from tenancy import services as tenancy_services
from tests.conftest import verified_client
from tests.factories import AdminUserFactory, EndUserFactory, EventFactory
from tests.paths.conftest import build_path
from tests.paths.test_services import enroll

pytestmark = pytest.mark.django_db


@pytest.fixture
def alice(acme):
    """An admin who may change Acme (and nothing else)."""
    user = AdminUserFactory(username="alice")
    tenancy_services.workspace_grant(workspace=acme, user=user, can_change=True)
    return user


@pytest.fixture
def client(alice):
    return verified_client(alice)


def version_url(version, view="change"):
    return f"/admin/paths/pathversion/{version.pk}/{view}/"


def message_texts(response) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def step_form(index: int, *, step=None, conditions=(), **values) -> dict:
    """POST data of one step in the inline: conditions as (property, operator, value) rows."""
    prefix = f"steps-{index}-"
    data = {
        "id": step.pk if step else "",
        "key": "",
        "title": "",
        "body": "",
        "order": index + 1,
        "ui_component": "checklist",
        "deep_link": "",
        "completion": "event",
        "event_name": "",
        "count": 1,
        "window_anchor": "previous_step",
        "questions": "",
        "expected_duration_0": "",
        "expected_duration_1": "",
        "expected_duration_2": "",
        "window_0": "",
        "window_1": "",
        "window_2": "",
        **values,
    }
    rows = [*conditions, ("", "eq", "")]
    data["conditions-rows"] = len(rows)
    for row, (prop, operator, value) in enumerate(rows):
        data.update({f"conditions-{row}-property": prop, f"conditions-{row}-operator": operator})
        data[f"conditions-{row}-value"] = value
    return {f"{prefix}{name}": value for name, value in data.items() if value is not False}


def version_post(version, steps: list[dict], *, initial: int = 0, changelog: str = "") -> dict:
    data = {
        "changelog": changelog,
        "steps-TOTAL_FORMS": len(steps),
        "steps-INITIAL_FORMS": initial,
        "steps-MIN_NUM_FORMS": 0,
        "steps-MAX_NUM_FORMS": 1000,
    }
    for step in steps:
        data.update(step)
    return data


# --- Building a path through the admin ------------------------------------------------------


def test_an_admin_creates_a_path_adds_steps_and_publishes_it(acme, client, alice):
    EventFactory(end_user=EndUserFactory(workspace=acme), name="Integration Added")
    EventFactory(end_user=EndUserFactory(workspace=acme), name="Teammate Invited")

    created = client.post(
        "/admin/paths/path/add/",
        {
            "workspace": acme.pk,
            "key": "getting-started",
            "name": "Getting started",
            "description": "",
            "priority": 10,
            "audience_personas": "admin, developer",
            "audience_use_cases": "",
            "audience_company_sizes": "",
            "audience_signup_sources": "",
        },
    )

    path = Path.objects.get(workspace=acme, key="getting-started")
    draft = path.versions.get()
    assert created.status_code == 302
    assert created["Location"] == version_url(draft)
    assert (path.priority, path.audience_personas, path.audience_use_cases) == (
        10,
        ["admin", "developer"],
        [],
    )

    editor = client.get(version_url(draft))
    assert editor.status_code == 200
    assert editor.context["has_change_permission"] is True

    saved = client.post(
        version_url(draft),
        version_post(
            draft,
            [
                step_form(
                    0,
                    key="welcome",
                    title="Say hello",
                    completion="form",
                    ui_component="modal",
                    questions=(
                        "role | Your role | choice | required | admin, developer\n"
                        "team_size | Team size | number"
                    ),
                ),
                step_form(
                    1,
                    key="connect",
                    title="Connect an integration",
                    event_name="Integration Added",
                    deep_link="/settings/integrations",
                    conditions=[("provider", "in", "github, gitlab"), ("repos", "gte", "2")],
                    expected_duration_1="2",
                ),
                step_form(
                    2,
                    key="invite",
                    title="Invite a teammate",
                    event_name="Teammate Invited",
                    count=2,
                    window_0="7",
                    optional="on",
                ),
            ],
            changelog="First version",
        ),
    )

    assert saved.status_code == 302, saved.context and saved.context["errors"]
    assert message_texts(saved)[-1] == (
        f'The path version “<a href="{version_url(draft)}">Getting started v1 (draft)</a>” '
        "was changed successfully."
    )
    assert [step_as_dict(step) for step in draft.steps.order_by("order")] == [
        {
            "key": "welcome",
            "title": "Say hello",
            "body": "",
            "optional": False,
            "expected_duration": None,
            "ui_component": "modal",
            "deep_link": "",
            "completion": "form",
            "event_name": "",
            "conditions": [],
            "count": 1,
            "window": None,
            "window_anchor": "previous_step",
            "questions": [
                {
                    "key": "role",
                    "label": "Your role",
                    "type": "choice",
                    "required": True,
                    "choices": ["admin", "developer"],
                },
                {"key": "team_size", "label": "Team size", "type": "number", "required": False},
            ],
        },
        {
            "key": "connect",
            "title": "Connect an integration",
            "body": "",
            "optional": False,
            "expected_duration": "PT2H",
            "ui_component": "checklist",
            "deep_link": "/settings/integrations",
            "completion": "event",
            "event_name": "Integration Added",
            "conditions": [
                {"property": "provider", "operator": "in", "value": ["github", "gitlab"]},
                {"property": "repos", "operator": "gte", "value": 2},
            ],
            "count": 1,
            "window": None,
            "window_anchor": "previous_step",
            "questions": [],
        },
        {
            "key": "invite",
            "title": "Invite a teammate",
            "body": "",
            "optional": True,
            "expected_duration": None,
            "ui_component": "checklist",
            "deep_link": "",
            "completion": "event",
            "event_name": "Teammate Invited",
            "conditions": [],
            "count": 2,
            "window": "P7D",
            "window_anchor": "previous_step",
            "questions": [],
        },
    ]
    draft.refresh_from_db()
    assert draft.changelog == "First version"

    # The editor shows the rules back as rows and lines, not JSON.
    content = client.get(version_url(draft)).content.decode()
    assert 'name="steps-1-conditions-0-property" value="provider"' in content
    assert 'name="steps-1-conditions-0-value" value="github, gitlab"' in content
    assert 'name="steps-1-conditions-1-value" value="2"' in content
    assert (
        "role | Your role | choice | required | admin, developer\nteam_size | Team size | number | optional"
        in content
    )

    published = client.post(version_url(draft, "publish"))

    assert published.status_code == 302
    assert published["Location"] == version_url(draft)
    assert message_texts(published) == ["Getting started v1 published."]
    draft.refresh_from_db()
    assert (draft.status, draft.published_by) == ("published", alice)


def test_reordering_and_deleting_steps_in_the_inline(acme, client):
    draft = build_path(acme, publish=False).versions.get()
    welcome, connect, invite = draft.steps.order_by("order")
    existing = [
        step_form(
            0,
            step=welcome,
            key="welcome",
            title="Say hello",
            completion="form",
            order=3,
            questions="role | Your role | choice | required | admin, developer",
        ),
        step_form(
            1,
            step=connect,
            key="connect",
            title="Connect an integration",
            event_name="Integration Added",
            order=1,
            conditions=[("provider", "in", "github, gitlab")],
            expected_duration_1="2",
        ),
        step_form(
            2,
            step=invite,
            key="invite",
            title="Invite a teammate",
            event_name="Teammate Invited",
            count=2,
            window_0="7",
            optional="on",
            order=2,
            DELETE="on",
        ),
    ]

    saved = client.post(version_url(draft), version_post(draft, existing, initial=3))

    assert saved.status_code == 302
    assert list(draft.steps.order_by("order").values_list("key", flat=True)) == ["connect", "welcome"]


def test_unknown_event_names_are_flagged_but_saved(acme, client):
    EventFactory(end_user=EndUserFactory(workspace=acme), name="Integration Connected")
    draft = services.path_create(workspace=acme, key="main", name="Main").versions.get()

    saved = client.post(
        version_url(draft),
        version_post(
            draft,
            [
                step_form(0, key="connect", title="Connect", event_name="Integration Conected"),
                step_form(1, key="launch", title="Launch", event_name="Rocket Launched"),
            ],
        ),
    )

    assert saved.status_code == 302
    assert message_texts(saved)[:2] == [
        "Step 'connect': no 'Integration Conected' event was tracked in Acme in the last 90 days. "
        "Check the spelling (did you mean 'Integration Connected'?).",
        "Step 'launch': no 'Rocket Launched' event was tracked in Acme in the last 90 days. "
        "Check the spelling.",
    ]
    assert list(draft.steps.order_by("order").values_list("event_name", flat=True)) == [
        "Integration Conected",
        "Rocket Launched",
    ]


def test_duplicate_step_keys_are_refused(acme, client):
    draft = services.path_create(workspace=acme, key="main", name="Main").versions.get()

    response = client.post(
        version_url(draft),
        version_post(
            draft,
            [
                step_form(0, key="connect", title="Connect", event_name="A"),
                step_form(1, key="connect", title="Connect again", event_name="B"),
            ],
        ),
    )

    assert response.status_code == 200
    formset = response.context["inline_admin_formsets"][0].formset
    assert formset.non_form_errors() == ["Step keys must be unique: 'connect' is used twice."]
    assert formset.forms[1].errors["key"] == ["Another step already uses the key 'connect'."]
    assert not draft.steps.exists()


def test_bad_rules_are_refused_with_the_row_or_line(acme, client):
    draft = services.path_create(workspace=acme, key="main", name="Main").versions.get()

    response = client.post(
        version_url(draft),
        version_post(
            draft,
            [
                step_form(
                    0,
                    key="about",
                    title="About you",
                    completion="form",
                    conditions=[("seats", "gt", "many")],
                    questions="role | Your role | select\nbroken line",
                )
            ],
        ),
    )

    assert response.status_code == 200
    errors = response.context["inline_admin_formsets"][0].formset.forms[0].errors
    assert errors["conditions"] == ["Row 1 (seats): '>' needs a number."]
    assert errors["questions"] == [
        "Line 2: write key | Label | type, then optionally required and choices.",
        "Question 'role': unknown type 'select' (one of text, choice, multi_choice, number, boolean).",
    ]
    assert not draft.steps.exists()


def test_publishing_an_invalid_draft_shows_why(acme, client):
    draft = services.path_create(workspace=acme, key="main", name="Main").versions.get()
    services.step_create(path_version=draft, key="about", title="About you", completion="form")

    response = client.post(version_url(draft, "publish"))

    assert message_texts(response) == [
        "Main v1 cannot be published: step 'about': a form step needs at least one question"
    ]
    draft.refresh_from_db()
    assert draft.status == "draft"


# --- Published versions are read-only -------------------------------------------------------


def test_a_published_version_is_read_only_in_the_admin(acme, client):
    version = build_path(acme).versions.get()
    connect = version.steps.get(key="connect")

    page = client.get(version_url(version))
    tampered = client.post(
        version_url(version),
        version_post(
            version, [step_form(0, step=connect, key="connect", title="Tampered", event_name="X")], initial=1
        ),
    )

    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    inline = page.context["inline_admin_formsets"][0]
    assert (inline.has_add_permission, inline.has_change_permission, inline.has_delete_permission) == (
        False,
        False,
        False,
    )
    content = page.content.decode()
    assert "Clone to draft" in content and ">Publish<" not in content
    assert tampered.status_code == 403
    connect.refresh_from_db()
    assert (connect.title, connect.event_name) == ("Connect an integration", "Integration Added")


def test_clone_to_draft_from_the_version_page_opens_the_new_draft(acme, client):
    version = build_path(acme).versions.get()

    response = client.post(version_url(version, "clone"))

    draft = PathVersion.objects.get(path=version.path, number=2)
    assert response["Location"] == version_url(draft)
    assert message_texts(response) == ["Getting started v2 created as a draft from v1."]
    assert draft.steps.count() == 3
    assert client.get(version_url(draft)).context["has_change_permission"] is True


def test_changelist_actions_publish_archive_and_clone(acme, client):
    for name in ("Integration Added", "Teammate Invited"):
        EventFactory(end_user=EndUserFactory(workspace=acme), name=name)
    path = build_path(acme)
    first = path.versions.get()

    client.post("/admin/paths/pathversion/", {"action": "clone_to_draft", "_selected_action": [first.pk]})
    second = path.versions.get(number=2)
    client.post("/admin/paths/pathversion/", {"action": "publish", "_selected_action": [second.pk]})
    archived = client.post(
        "/admin/paths/pathversion/", {"action": "archive", "_selected_action": [second.pk]}
    )

    assert message_texts(archived) == [
        "Getting started v2 created as a draft from v1.",
        "Getting started v2 published.",
        "Getting started v2 archived.",
    ]
    assert list(path.versions.order_by("number").values_list("status", flat=True)) == ["archived", "archived"]


# --- Enrolled counts, preview and diff pages ------------------------------------------------


def test_the_version_list_shows_how_many_users_are_enrolled(acme, client):
    path = build_path(acme)
    first = path.versions.get()
    second = services.path_version_create_draft(source=first)
    for status in ("active", "active", "completed"):
        enroll(EndUserFactory(workspace=acme), first, status)

    response = client.get("/admin/paths/pathversion/")

    rows = {version.pk: version for version in response.context["cl"].result_list}
    admin = response.context["cl"].model_admin
    assert admin.enrolled(rows[first.pk]) == "2 active · 1 completed"
    assert admin.enrolled(rows[second.pk]) == "none"
    assert (rows[first.pk].step_count, rows[second.pk].step_count) == (3, 3)
    assert "2 active · 1 completed" in response.content.decode()
    path_page = client.get(f"/admin/paths/path/{path.pk}/change/").content.decode()
    assert "<td>2 active · 1 completed</td>" in path_page


def test_the_preview_shows_the_checklist_the_user_sees(acme, client):
    version = build_path(acme).versions.get()

    response = client.get(version_url(version, "preview"))

    assert response.status_code == 200
    preview = response.content.decode().split('<div class="paths-preview">')[1]
    text = re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", preview)))
    assert (
        "What an end user on Getting started v1 (published) sees: 3 steps. "
        "1. Say hello Tell us about you. Shown as: Modal "
        "Your role * admin developer Team size "
        "Done when the form is submitted with valid answers. "
        "2. Connect an integration Shown as: Tooltip · Opens: /settings/integrations · About 2 hours "
        'Done when \'Integration Added\' happens with provider is one of ["github", "gitlab"]. '
        "3. Invite a teammate optional Shown as: Checklist "
        "Done when 'Teammate Invited' happens 2 times, within 7 days of the previous step's completion."
    ) in text
    content = response.content.decode()
    assert '<a href="/settings/integrations">/settings/integrations</a>' in content
    assert content.count('type="radio" disabled name="welcome-role"') == 2
    assert '<input type="number" disabled>' in content


def test_the_history_page_shows_a_readable_diff_between_two_versions(acme, client):
    path = build_path(acme)
    first = path.versions.get()
    second = services.path_version_create_draft(source=first)
    services.step_update(step=second.steps.get(key="connect"), event_name="Integration Connected")
    services.step_create(path_version=second, key="launch", title="Launch", event_name="Launched")

    default = client.get(f"/admin/paths/path/{path.pk}/compare/")
    chosen = client.get(f"/admin/paths/path/{path.pk}/compare/?old=2&new=1")

    assert (default.context["old"], default.context["new"]) == (first, second)
    content = default.content.decode()
    assert "<h2>Changes from v1 to v2</h2>" in content
    assert (
        '<ul id="paths-changes">\n  '
        "<li>step &#x27;connect&#x27;: event_name &#x27;Integration Added&#x27; → "
        "&#x27;Integration Connected&#x27;</li>"
        "<li>step &#x27;launch&#x27; added</li>\n  </ul>"
    ) in content
    assert chosen.context["changes"] == [
        "step 'connect': event_name 'Integration Connected' → 'Integration Added'",
        "step 'launch' removed",
    ]
    assert client.get(f"/admin/paths/path/{path.pk}/compare/?old=9&new=1").status_code == 404


# --- Scoping --------------------------------------------------------------------------------


def test_an_admin_of_one_workspace_never_sees_anothers_paths(acme, globex, client):
    mine = build_path(acme, name="Acme onboarding")
    theirs = build_path(globex, name="Globex onboarding")
    their_version = theirs.versions.get()

    paths = client.get("/admin/paths/path/")
    versions = client.get("/admin/paths/pathversion/")

    assert [path.name for path in paths.context["cl"].result_list] == ["Acme onboarding"]
    assert [str(version) for version in versions.context["cl"].result_list] == [
        "Acme onboarding v1 (published)"
    ]
    assert "Globex" not in paths.content.decode()
    assert client.get(f"/admin/paths/path/{theirs.pk}/change/").status_code == 302
    for view in ("preview",):
        assert client.get(version_url(their_version, view)).status_code == 404
    assert client.get(f"/admin/paths/path/{theirs.pk}/compare/").status_code == 404
    for action in ("publish", "archive", "clone"):
        assert client.post(version_url(their_version, action)).status_code == 404
    refused = client.post(
        "/admin/paths/pathversion/", {"action": "archive", "_selected_action": [their_version.pk]}
    )
    assert refused.status_code == 302
    their_version.refresh_from_db()
    assert their_version.status == "published"
    assert PathVersion.objects.filter(path=theirs).count() == 1
    assert client.get(f"/admin/paths/path/{mine.pk}/change/").status_code == 200


def test_a_view_only_admin_cannot_publish(acme):
    viewer = AdminUserFactory(username="viewer")
    tenancy_services.workspace_grant(workspace=acme, user=viewer, can_change=False)
    client = verified_client(viewer)
    draft = build_path(acme, publish=False).versions.get()

    page = client.get(version_url(draft))
    response = client.post(version_url(draft, "publish"))

    assert page.status_code == 200
    assert page.context["has_change_permission"] is False
    assert response.status_code == 403
    draft.refresh_from_db()
    assert draft.status == "draft"


class FormFields(HTMLParser):
    """The values a browser would submit from the page's main form (without JavaScript)."""

    def __init__(self, form_id: str):
        super().__init__()
        self.form_id, self.inside, self.data = form_id, False, []
        self.select, self.textarea = None, None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            self.inside = attrs.get("id") == self.form_id
        if not self.inside or "__prefix__" in attrs.get("name", ""):
            return
        if tag == "input" and attrs.get("type") not in ("submit", "button", "file"):
            if attrs.get("type") in ("checkbox", "radio") and "checked" not in attrs:
                return
            default = "on" if attrs.get("type") == "checkbox" else ""
            self.data.append((attrs["name"], attrs.get("value", default)))
        elif tag == "select":
            self.select = [attrs["name"], None, None]
        elif tag == "option" and self.select:
            if self.select[1] is None:
                self.select[1] = attrs.get("value", "")
            if "selected" in attrs:
                self.select[2] = attrs.get("value", "")
        elif tag == "textarea":
            self.textarea = [attrs["name"], ""]

    def handle_data(self, data):
        if self.textarea is not None:
            self.textarea[1] += data

    def handle_endtag(self, tag):
        if tag == "form":
            self.inside = False
        elif tag == "select" and self.select:
            name, first, chosen = self.select
            self.data.append((name, chosen if chosen is not None else first))
            self.select = None
        elif tag == "textarea" and self.textarea is not None:
            self.data.append((self.textarea[0], self.textarea[1].removeprefix("\n")))
            self.textarea = None


def submitted(content: str, form_id: str) -> dict:
    parser = FormFields(form_id)
    parser.feed(content)
    data = {}
    for name, value in parser.data:
        data.setdefault(name, []).append(value)
    return data


def test_the_editor_page_saves_back_unchanged_as_a_browser_submits_it(acme, client):
    version = build_path(acme, publish=False).versions.get()
    before = [step_as_dict(step) for step in version.steps.order_by("order")]

    page = client.get(version_url(version))
    data = submitted(page.content.decode(), "pathversion_form")
    response = client.post(version_url(version), {**data, "_continue": "1"})

    formset = response.context and response.context["inline_admin_formsets"][0].formset
    assert response.status_code == 302, formset and [(form.errors, form.changed_data) for form in formset]
    assert [step_as_dict(step) for step in version.steps.order_by("order")] == before
    assert version.steps.count() == 3
