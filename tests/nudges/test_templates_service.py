"""The template workflow: drafts, four-eyes approval with the guardian permission, checks,
activation retiring the previous version, immutability; and the policy's dry run (the preview's)."""

import pytest
from guardian.shortcuts import assign_perm

from guardrails.models import NudgeCapCounter, PolicyDecision, WorkspacePolicy
from guardrails.policy import engine as policy
from nudges.content import versions as templates_service
from nudges.content.versions import ActivationRefused, ApprovalRefused, TemplateError
from nudges.models import TemplateVersion
from tenancy.models import AuditLog
from tests.factories import AdminUserFactory, EndUserFactory, WorkspaceFactory
from tests.nudges.factories import (
    DraftVersionFactory,
    NudgeSettingsFactory,
    NudgeTemplateFactory,
    TemplateVersionFactory,
    TriggerFactory,
)

pytestmark = pytest.mark.django_db

Status = TemplateVersion.Status


@pytest.fixture
def workspace():
    workspace = WorkspaceFactory(name="Acme")
    NudgeSettingsFactory(workspace=workspace)
    return workspace


@pytest.fixture
def template(workspace):
    return NudgeTemplateFactory(trigger=TriggerFactory(workspace=workspace), name="Stuck email")


@pytest.fixture
def author():
    return AdminUserFactory(username="alice")


@pytest.fixture
def approver(workspace):
    user = AdminUserFactory(username="bob")
    assign_perm("onboarding.approve_nudge_templates", user, workspace)
    return user


@pytest.fixture
def draft(template, author):
    return templates_service.template_version_create_draft(template=template, actor=author)


def actions_on(version) -> list[tuple[str, str]]:
    rows = AuditLog.objects.filter(object_type="nudges.TemplateVersion", object_id=str(version.pk))
    return [(row.action, row.actor_label) for row in rows.order_by("created_at", "pk")]


# --- Drafts ------------------------------------------------------------------------------------------


def test_a_new_template_starts_with_a_checked_draft(workspace, author):
    trigger = TriggerFactory(workspace=workspace)

    template = templates_service.nudge_template_create(
        trigger=trigger, name="Welcome", channel="email", actor=author
    )

    draft = template.versions.get()
    assert (template.workspace, draft.number, draft.status, draft.variant, draft.created_by) == (
        workspace,
        1,
        Status.DRAFT,
        "A",
        author,
    )
    assert draft.subject == "Next: {{ step_title }}"
    assert [result["code"] for result in draft.check_results if not result["passed"]] == []
    assert actions_on(draft) == [("nudge_template.draft_create", "alice")]


def test_a_new_draft_copies_the_latest_version_and_takes_the_next_number(template, author):
    TemplateVersionFactory(template=template, number=1, body="Version one")
    TemplateVersionFactory(
        template=template, number=2, status=Status.APPROVED, body="Version two", variant="B"
    )

    draft = templates_service.template_version_create_draft(template=template, actor=author)

    assert (draft.number, draft.status, draft.body, draft.variant) == (3, Status.DRAFT, "Version two", "B")


def test_a_draft_is_edited_in_place(draft, author):
    edited = templates_service.template_version_update(
        version=draft,
        actor=author,
        variant="B",
        subject="New subject",
        body="Hi {{ first_name }}",
        cta_text="Go",
        cta_url="/setup",
    )

    assert edited.pk == draft.pk
    draft.refresh_from_db()
    assert (draft.variant, draft.subject, draft.body, draft.cta_url) == (
        "B",
        "New subject",
        "Hi {{ first_name }}",
        "/setup",
    )
    assert actions_on(draft)[-1] == ("nudge_template.draft_update", "alice")


@pytest.mark.parametrize("status", [Status.APPROVED, Status.ACTIVE, Status.RETIRED])
def test_editing_an_approved_active_or_retired_version_makes_a_new_draft(template, author, status):
    version = TemplateVersionFactory(template=template, number=1, status=status, body="As approved")

    edited = templates_service.template_version_update(
        version=version, actor=author, variant="A", subject="S", body="Changed", cta_text="", cta_url=""
    )

    assert (edited.number, edited.status, edited.body, edited.created_by) == (
        2,
        Status.DRAFT,
        "Changed",
        author,
    )
    version.refresh_from_db()
    assert (version.status, version.body) == (status, "As approved")


def test_a_variant_name_is_validated(draft, author):
    with pytest.raises(TemplateError, match="a variant is 1 to 20 letters"):
        templates_service.template_version_update(
            version=draft, actor=author, variant="not ok!", subject="", body="x", cta_text="", cta_url=""
        )


# --- Approval ----------------------------------------------------------------------------------------


def test_the_author_cannot_approve_their_own_draft_even_with_the_permission(draft, author, workspace):
    assign_perm("onboarding.approve_nudge_templates", author, workspace)

    with pytest.raises(ApprovalRefused) as refused:
        templates_service.template_version_approve(version=draft, actor=author)

    assert refused.value.reasons == ["you wrote or edited this draft: another admin user must approve it"]
    draft.refresh_from_db()
    assert (draft.status, draft.approved_by, draft.approved_at) == (Status.DRAFT, None, None)
    assert actions_on(draft) == [("nudge_template.draft_create", "alice")]


def test_an_admin_who_edited_the_draft_cannot_approve_it_either(draft, approver):
    templates_service.template_version_update(
        version=draft, actor=approver, variant="A", subject="Edited", body="Hi", cta_text="", cta_url=""
    )

    with pytest.raises(ApprovalRefused, match="you wrote or edited this draft"):
        templates_service.template_version_approve(version=draft, actor=approver)


def test_approval_needs_the_guardian_permission_on_the_templates_workspace(draft, workspace):
    carol = AdminUserFactory(username="carol")
    assign_perm("onboarding.approve_nudge_templates", carol, WorkspaceFactory(name="Globex"))

    with pytest.raises(ApprovalRefused) as refused:
        templates_service.template_version_approve(version=draft, actor=carol)

    assert str(refused.value) == (
        "Stuck email v1 cannot be approved: you do not hold the permission to approve nudge templates of Acme"
    )
    draft.refresh_from_db()
    assert draft.status == Status.DRAFT


def test_a_second_admin_with_the_permission_approves(draft, approver):
    approved = templates_service.template_version_approve(version=draft, actor=approver)

    draft.refresh_from_db()
    assert (draft.status, draft.approved_by, approved.status) == (Status.APPROVED, approver, Status.APPROVED)
    assert draft.approved_at is not None
    assert all(result["passed"] for result in draft.check_results)
    assert actions_on(draft) == [("nudge_template.draft_create", "alice"), ("nudge_template.approve", "bob")]


def test_a_superuser_approves_others_drafts_but_not_their_own(template, draft):
    root = AdminUserFactory(username="root", is_superuser=True)
    templates_service.template_version_approve(version=draft, actor=root)
    own = templates_service.template_version_create_draft(template=template, actor=root)

    with pytest.raises(ApprovalRefused, match="another admin user must approve it"):
        templates_service.template_version_approve(version=own, actor=root)


def test_failing_checks_refuse_approval_list_each_failure_and_are_recorded(draft, approver, workspace):
    workspace.nudge_settings.postal_address = ""
    workspace.nudge_settings.banned_words = ["hi"]
    workspace.nudge_settings.save()
    TemplateVersion.objects.filter(pk=draft.pk).update(body="Hi {{ coupon }}")

    with pytest.raises(ApprovalRefused) as refused:
        templates_service.template_version_approve(version=draft, actor=approver)

    assert refused.value.reasons == [
        "variables: unknown variables: {{ coupon }}",
        "postal_address: the workspace has no postal address in its nudge settings: every email must carry"
        " one (CAN-SPAM)",
        "banned_words: banned words: hi",
    ]
    draft.refresh_from_db()
    assert draft.status == Status.DRAFT
    assert [result["code"] for result in draft.check_results if not result["passed"]] == [
        "variables",
        "postal_address",
        "banned_words",
    ]
    assert actions_on(draft)[-1] == ("nudge_template.approve_refused", "bob")


def test_only_drafts_are_approved(template, approver):
    active = TemplateVersionFactory(template=template)

    with pytest.raises(ApprovalRefused, match="it is active: only drafts are approved"):
        templates_service.template_version_approve(version=active, actor=approver)


def test_a_staff_flag_is_needed_to_approve(draft, workspace):
    outsider = AdminUserFactory(username="dave", is_staff=False)
    assign_perm("onboarding.approve_nudge_templates", outsider, workspace)

    with pytest.raises(ApprovalRefused, match="approval needs an active admin user"):
        templates_service.template_version_approve(version=draft, actor=outsider)


# --- Activation and retirement ----------------------------------------------------------------------


def test_activation_retires_the_previous_active_version_of_the_same_variant(template, approver):
    old_a = TemplateVersionFactory(template=template, number=1, variant="A")
    active_b = TemplateVersionFactory(template=template, number=2, variant="B")
    new_a = DraftVersionFactory(template=template, number=3, variant="A", status=Status.APPROVED)

    templates_service.template_version_activate(version=new_a, actor=approver)

    statuses = dict(template.versions.values_list("number", "status"))
    assert statuses == {1: Status.RETIRED, 2: Status.ACTIVE, 3: Status.ACTIVE}
    old_a.refresh_from_db()
    new_a.refresh_from_db()
    assert old_a.retired_at is not None and new_a.activated_at is not None
    assert actions_on(old_a)[-1] == ("nudge_template.retire", "bob")
    assert actions_on(new_a)[-1] == ("nudge_template.activate", "bob")
    active_b.refresh_from_db()
    assert active_b.status == Status.ACTIVE


def test_a_draft_is_not_activated(draft, approver):
    with pytest.raises(
        ActivationRefused, match=r"it is draft: only approved versions are activated \(approve"
    ):
        templates_service.template_version_activate(version=draft, actor=approver)


def test_activation_runs_the_checks_again(template, approver, workspace):
    approved = DraftVersionFactory(
        template=template, status=Status.APPROVED, cta_url="https://app.example.com/x"
    )
    previous = TemplateVersionFactory(template=template, variant="A")
    workspace.nudge_settings.allowed_link_domains = ["other.example.com"]
    workspace.nudge_settings.save()

    with pytest.raises(
        ActivationRefused, match=r"links: https://app\.example\.com/x points to app\.example\.com"
    ):
        templates_service.template_version_activate(version=approved, actor=approver)

    approved.refresh_from_db()
    previous.refresh_from_db()
    assert (approved.status, previous.status) == (Status.APPROVED, Status.ACTIVE)
    assert [result["code"] for result in approved.check_results if not result["passed"]] == ["links"]


def test_draft_approve_activate_end_to_end(draft, approver):
    templates_service.template_version_approve(version=draft, actor=approver)
    templates_service.template_version_activate(version=draft, actor=approver)

    draft.refresh_from_db()
    assert draft.status == Status.ACTIVE
    assert [action for action, _ in actions_on(draft)] == [
        "nudge_template.draft_create",
        "nudge_template.approve",
        "nudge_template.activate",
    ]


def test_retire_a_version_and_not_twice(template, author):
    active = TemplateVersionFactory(template=template)

    templates_service.template_version_retire(version=active, actor=author)

    active.refresh_from_db()
    assert active.status == Status.RETIRED
    with pytest.raises(TemplateError, match="is already retired"):
        templates_service.template_version_retire(version=active, actor=author)


# --- The policy's dry run (the preview) -------------------------------------------------------------


@pytest.mark.usefixtures("frozen_now")  # the real check and the dry run after it on one day
def test_a_dry_run_evaluates_every_rule_but_records_and_reserves_nothing(settings):
    settings.REDIS_URL = ""  # the cap counted by the database, to see it unchanged
    end_user = EndUserFactory(timezone="Europe/Paris")
    WorkspacePolicy.objects.create(workspace=end_user.workspace, daily_nudge_cap=1)
    context = {"channel": "email", "purpose": "onboarding"}

    first = policy.check(policy.NUDGE_SEND, end_user, context, dry_run=True)
    second = policy.check(policy.NUDGE_SEND, end_user, context, dry_run=True)

    assert (first.allowed, first.decision_id, first.reservation) == (True, None, None)
    assert second.allowed
    assert PolicyDecision.objects.count() == 0
    assert NudgeCapCounter.objects.filter(count__gt=0).count() == 0

    real = policy.check(policy.NUDGE_SEND, end_user, context)
    after = policy.check(policy.NUDGE_SEND, end_user, context, dry_run=True)

    assert real.allowed and PolicyDecision.objects.count() == 1
    assert (after.allowed, after.codes) == (False, ["daily_cap"])
    assert PolicyDecision.objects.count() == 1
