"""Templates in the admin: the draft editor, approve / activate / retire / new draft (buttons and
actions), the checks on the page, the preview for an end user (never their contact data), and the
per-variant rates."""

import pytest
from django.utils import timezone

from guardrails.models import PolicyDecision, WorkspacePolicy
from nudges.content import stats
from nudges.llm import personalize
from nudges.models import NudgeTemplate, TemplateVersion
from tenancy import services
from tests.conftest import post_action, verified_client
from tests.factories import (
    PII_CANARIES,
    PII_CANARY_DIGITS,
    AdminUserFactory,
    ContactFactory,
    EndUserFactory,
    EventFactory,
)
from tests.nudges import test_admin
from tests.nudges.factories import (
    DraftVersionFactory,
    NudgeFactory,
    NudgeTemplateFactory,
    TemplateVersionFactory,
    TriggerFactory,
)

pytestmark = pytest.mark.django_db

Status = TemplateVersion.Status
# The admin fixtures (Acme with its admins alice and bob, Globex).
acme, globex, alice, bob, client = (
    test_admin.acme,
    test_admin.globex,
    test_admin.alice,
    test_admin.bob,
    test_admin.client,
)


@pytest.fixture
def template(acme):
    return NudgeTemplateFactory(trigger=TriggerFactory(workspace=acme, name="Stuck"), name="Stuck email")


@pytest.fixture
def draft(template, alice):
    return DraftVersionFactory(template=template, number=1, created_by=alice)


def version_url(version, view="change"):
    return f"/admin/nudges/templateversion/{version.pk}/{view}/"


def shown_messages(response) -> list[str]:
    return [str(message) for message in response.context["messages"]]


# --- Creating and editing ------------------------------------------------------------------------


def test_a_template_created_in_the_admin_opens_its_first_draft(acme, client):
    trigger = TriggerFactory(workspace=acme)

    response = client.post(
        "/admin/nudges/nudgetemplate/add/",
        {"trigger": trigger.pk, "name": "Welcome email", "channel": "email", "persona": "", "locale": ""},
        follow=True,
    )

    template = NudgeTemplate.objects.get(name="Welcome email")
    draft = template.versions.get()
    assert response.redirect_chain[-1][0] == version_url(draft)
    assert (template.workspace, draft.status, draft.created_by.username) == (acme, Status.DRAFT, "alice")
    assert "✓ passed" in response.content.decode()


def test_a_template_cannot_use_another_workspaces_trigger(acme, globex, client):
    theirs = TriggerFactory(workspace=globex)

    response = client.post(
        "/admin/nudges/nudgetemplate/add/", {"trigger": theirs.pk, "name": "Sneaky", "channel": "email"}
    )

    assert "trigger" in response.context["adminform"].form.errors
    assert not NudgeTemplate.objects.exists()


def test_a_draft_is_edited_and_its_checks_shown(draft, client):
    response = client.post(
        version_url(draft),
        {
            "variant": "A",
            "subject": "Hi",
            "body": "Use {{ coupon }} at https://elsewhere.test/x",
            "cta_text": "Go",
            "cta_url": "/setup",
        },
        follow=True,
    )

    draft.refresh_from_db()
    assert draft.body == "Use {{ coupon }} at https://elsewhere.test/x"
    assert shown_messages(response)[0].startswith("Saved; the checks failed: variables, links")
    page = client.get(version_url(draft)).content.decode()
    assert "unknown variables: {{ coupon }}" in page
    assert "https://elsewhere.test/x points to elsewhere.test, not an allowed domain" in page


def test_an_approved_version_cannot_be_edited_in_the_admin(template, client):
    approved = TemplateVersionFactory(template=template, status=Status.APPROVED, body="As approved")

    response = client.post(
        version_url(approved),
        {"variant": "A", "subject": "x", "body": "Changed", "cta_text": "", "cta_url": ""},
    )

    assert response.status_code == 403
    approved.refresh_from_db()
    assert approved.body == "As approved"
    page = client.get(version_url(approved)).content.decode()
    assert 'class="nudges-action">New draft</button>' in page
    assert 'class="nudges-action">Approve</button>' not in page


def test_new_draft_from_the_template_page_and_from_a_version(template, client):
    active = TemplateVersionFactory(template=template, number=1, body="Live words")

    response = client.post(f"/admin/nudges/nudgetemplate/{template.pk}/new-draft/", follow=True)
    first = template.versions.get(number=2)
    assert response.redirect_chain[-1][0] == version_url(first)
    assert (first.status, first.body) == (Status.DRAFT, "Live words")

    client.post(version_url(active, "new-draft"))
    assert template.versions.get(number=3).body == "Live words"


# --- Approve, activate, retire -------------------------------------------------------------------------


def test_the_author_pressing_approve_is_refused_with_the_reason(draft, client):
    response = client.post(version_url(draft, "approve"), follow=True)

    assert shown_messages(response) == [
        "Stuck email v1 cannot be approved: you wrote or edited this draft: another admin user must approve"
        " it; you do not hold the permission to approve nudge templates of Acme"
    ]
    draft.refresh_from_db()
    assert draft.status == Status.DRAFT


def test_the_approve_action_refuses_with_a_message_naming_the_reason(draft, acme):
    carol = AdminUserFactory(username="carol")
    services.workspace_grant(workspace=acme, user=carol, can_change=True)
    client = verified_client(carol)

    response = client.post(
        "/admin/nudges/templateversion/",
        {"action": "approve", "_selected_action": [draft.pk]},
        follow=True,
    )

    assert shown_messages(response) == [
        "Stuck email v1 cannot be approved: you do not hold the permission to approve nudge templates of Acme"
    ]
    draft.refresh_from_db()
    assert (draft.status, draft.approved_by) == (Status.DRAFT, None)


def test_failing_checks_refuse_the_approval_with_each_failure(draft, bob, acme):
    acme.nudge_settings.banned_words = ["hi"]
    acme.nudge_settings.save()

    response = verified_client(bob).post(version_url(draft, "approve"), follow=True)

    assert shown_messages(response) == ["Stuck email v1 cannot be approved: banned_words: banned words: hi"]
    draft.refresh_from_db()
    assert draft.status == Status.DRAFT
    assert "✗ failed" in response.content.decode()


def test_a_second_admin_approves_then_activates_retiring_the_previous_version(template, draft, bob):
    previous = TemplateVersionFactory(template=template, number=2, variant="A")
    client = verified_client(bob)

    approved = client.post(version_url(draft, "approve"), follow=True)
    assert shown_messages(approved) == ["Stuck email v1 approved: it can be activated."]
    activated = client.post(version_url(draft, "activate"), follow=True)
    assert shown_messages(activated) == ["Stuck email v1 is active for variant A."]

    draft.refresh_from_db()
    previous.refresh_from_db()
    assert (draft.status, draft.approved_by, previous.status) == (Status.ACTIVE, bob, Status.RETIRED)


def test_changelist_actions_activate_and_retire(template, client):
    approved = DraftVersionFactory(template=template, number=1, status=Status.APPROVED)
    old = TemplateVersionFactory(template=template, number=2, variant="A")

    post_action(client, "/admin/nudges/templateversion/", "activate", [approved])
    approved.refresh_from_db()
    old.refresh_from_db()
    assert (approved.status, old.status) == (Status.ACTIVE, Status.RETIRED)

    post_action(client, "/admin/nudges/templateversion/", "retire", [approved])
    approved.refresh_from_db()
    assert approved.status == Status.RETIRED


def test_actions_leave_another_workspaces_versions_alone(globex, client):
    theirs = DraftVersionFactory(template=NudgeTemplateFactory(trigger=TriggerFactory(workspace=globex)))

    post_action(client, "/admin/nudges/templateversion/", "retire", [theirs])

    theirs.refresh_from_db()
    assert theirs.status == Status.DRAFT


# --- Preview ---------------------------------------------------------------------------------------------


@pytest.fixture
def ada(acme):
    end_user = EndUserFactory(workspace=acme, external_id="ada", persona="developer")
    ContactFactory(end_user=end_user)
    for number in range(4):
        EventFactory(end_user=end_user, name="Project Created", message_id=f"ada-{number}")
    return end_user


def test_the_preview_renders_for_a_chosen_user_without_their_contact_data(
    template, draft, ada, client, settings
):
    settings.OPENAI_API_KEY = ""
    TemplateVersion.objects.filter(pk=draft.pk).update(
        subject="{{ first_name }}, a tip for a {{ persona }}",
        body="Hi {{ first_name }} ({{ name }}), {{ workspace_name }} has more for you.",
    )

    response = client.get(version_url(draft, "preview") + "?user=ada")

    assert response.status_code == 200
    page = response.content.decode()
    for canary in PII_CANARIES:
        assert canary.lower() not in page.lower()
    assert PII_CANARY_DIGITS not in page
    assert "{{ first_name }}, a tip for a developer" in page
    assert "Hi {{ first_name }} ({{ name }}), Acme has more for you." in page
    assert "LLM not configured (no OPENAI_API_KEY): the static template is used." in page
    assert "Allowed: a nudge would be sent now." in page
    assert PolicyDecision.objects.count() == 0


def test_the_preview_shows_the_policy_denial_and_its_reasons(template, draft, ada, client):
    WorkspacePolicy.objects.create(workspace=ada.workspace, daily_nudge_cap=0)

    page = client.get(version_url(draft, "preview") + "?user=ada").content.decode()

    assert "Denied:" in page
    assert "<code>daily_cap</code>: daily cap of 0 reached" in page
    assert PolicyDecision.objects.count() == 0


def test_the_preview_says_when_personalisation_fell_back_for_another_reason(
    template, draft, ada, client, monkeypatch, settings
):
    settings.OPENAI_API_KEY = "sk-test"

    def fallback(**kwargs):
        return personalize.Personalisation(
            draft=kwargs["draft"], personalised=False, fallback_reason="timeout: 10 s"
        )

    monkeypatch.setattr(personalize, "personalise", fallback)

    page = client.get(version_url(draft, "preview") + "?user=ada").content.decode()

    assert "Personalisation unavailable (timeout: 10 s): the static template is used." in page


def test_the_preview_shows_the_personalised_version(template, draft, ada, client, monkeypatch, settings):
    settings.OPENAI_API_KEY = "sk-test"
    seen = {}

    def personalised(**kwargs):
        seen.update(kwargs)
        draft_out = personalize.Draft(
            subject="Ready, {{ first_name }}?",
            body="Your projects await.",
            cta_text="Open",
            cta_url="/projects",
        )
        return personalize.Personalisation(draft=draft_out, personalised=True, llm_call_id=None)

    monkeypatch.setattr(personalize, "personalise", personalised)

    page = client.get(version_url(draft, "preview") + "?user=ada").content.decode()

    assert "Personalised by the LLM." in page
    assert "Your projects await." in page
    assert seen["nudge"].pk is None and seen["channel"] == "email"
    assert "{{ first_name }}" in seen["draft"].body


def test_the_preview_of_an_unknown_user_says_so(draft, client):
    page = client.get(version_url(draft, "preview") + "?user=nobody").content.decode()

    assert "No end user “nobody” in Acme." in page


def test_the_preview_is_not_for_users_of_another_workspace(draft, globex, client):
    EndUserFactory(workspace=globex, external_id="grace")

    page = client.get(version_url(draft, "preview") + "?user=grace").content.decode()

    assert "No end user “grace” in Acme." in page


# --- Per template and variant rates ----------------------------------------------------------------


def test_the_template_page_shows_sends_and_rates_per_variant(template, client):
    now = timezone.now()
    a1 = TemplateVersionFactory(
        template=template, number=1, variant="A", status=Status.RETIRED, sends=2, rewards=1
    )
    a2 = TemplateVersionFactory(template=template, number=2, variant="A", sends=2, rewards=0)
    b = TemplateVersionFactory(template=template, number=3, variant="B", sends=1, rewards=1)
    trigger = template.trigger
    NudgeFactory(trigger=trigger, template_version=a1, opened_at=now, clicked_at=now)
    NudgeFactory(trigger=trigger, template_version=a1)
    NudgeFactory(trigger=trigger, template_version=a2, opened_at=now)
    NudgeFactory(trigger=trigger, template_version=a2, status="failed", sent_at=None)  # never sent
    NudgeFactory(trigger=trigger, template_version=a2, channel="in_app", seen_at=now, converted_at=now)
    NudgeFactory(trigger=trigger, template_version=b, opened_at=now, clicked_at=now, converted_at=now)

    variants = stats.variant_stats(workspace=template.workspace, template=template)
    assert [
        (v.variant, v.sent, v.opened, v.clicked, v.converted, v.bandit_sends, v.bandit_rewards)
        for v in variants
    ] == [
        ("A", 4, 3, 1, 1, 4, 1),
        ("B", 1, 1, 1, 1, 1, 1),
    ]
    assert (variants[0].open_rate, variants[0].click_rate, variants[0].conversion_rate) == (0.75, 0.25, 0.25)
    assert [(row.number, row.sent) for row in variants[0].versions] == [(2, 2), (1, 2)]

    page = client.get(f"/admin/nudges/nudgetemplate/{template.pk}/change/").content.decode()
    assert "<td>75.0% (3)</td>" in page
    assert "<td>25.0% (1)</td>" in page
    assert "<td>100.0% (1)</td>" in page


def test_a_template_without_sends_shows_no_rates(template, client):
    TemplateVersionFactory(template=template)

    page = client.get(f"/admin/nudges/nudgetemplate/{template.pk}/change/").content.decode()

    assert "<td>- (0)</td>" in page


def test_a_click_counts_as_an_open_when_no_pixel_loaded(template, client):
    """Images blocked in the mail client: no open pixel, yet the click proves it was opened."""
    version = TemplateVersionFactory(template=template, variant="A")
    now = timezone.now()
    NudgeFactory(trigger=template.trigger, template_version=version, clicked_at=now)
    NudgeFactory(trigger=template.trigger, template_version=version)

    [variant] = stats.variant_stats(workspace=template.workspace, template=template)

    assert (variant.sent, variant.opened, variant.clicked) == (2, 1, 1)
    assert (variant.open_rate, variant.click_rate) == (0.5, 0.5)
    page = client.get(f"/admin/nudges/nudgetemplate/{template.pk}/change/").content.decode()
    assert page.count("<td>50.0% (1)</td>") == 4  # open and click rates, of the variant and its version
    assert "a click counts as an open" in page
