"""Admin of the policy engine: scoped to the admin's workspaces, read-only ledgers, editable policy."""

import pytest
from django.utils.html import escape

from guardrails.models import ConsentRecord, PolicyDecision, Preference, Suppression, WorkspacePolicy
from guardrails.policy import engine as policy
from guardrails.policy import services as policy_services
from guardrails.policy import subjects
from tenancy import services as tenancy_services
from tests.conftest import listed, verified_client
from tests.factories import AdminUserFactory, EndUserFactory

pytestmark = pytest.mark.django_db

CHANGELISTS = {
    "workspacepolicy": WorkspacePolicy,
    "consentrecord": ConsentRecord,
    "policydecision": PolicyDecision,
    "suppression": Suppression,
    "preference": Preference,
}


@pytest.fixture
def two_workspaces(tenant, other_tenant):
    """Acme's ada and Globex's grace, each with a policy, a consent record, a decision, a
    suppression and preferences."""
    rows = {}
    for workspace, external_id in ((tenant[0], "ada"), (other_tenant[0], "grace")):
        end_user = EndUserFactory(workspace=workspace, external_id=external_id, timezone="UTC")
        WorkspacePolicy.objects.create(workspace=workspace, daily_nudge_cap=2)
        policy_services.consent_record(
            end_user=end_user, channel="sms", purpose="onboarding", granted=True, source="api"
        )
        policy.check(policy.NUDGE_SEND, end_user, {"channel": "sms", "purpose": "marketing"})
        Suppression.objects.create(
            workspace=workspace,
            channel="email",
            subject_digest=subjects.subject_digest(workspace, subjects.EMAIL, f"{external_id}@example.com"),
            reason="hard_bounce",
        )
        Preference.objects.create(workspace=workspace, end_user=end_user)
        rows[external_id] = end_user
    return rows


@pytest.fixture
def alice_client(tenant):
    alice = AdminUserFactory(username="alice")
    tenancy_services.workspace_grant(workspace=tenant[0], user=alice, can_change=True)
    return verified_client(alice)


def test_each_changelist_shows_only_the_granted_workspace(two_workspaces, alice_client, tenant):
    for model_name, model in CHANGELISTS.items():
        rows = listed(alice_client.get(f"/admin/guardrails/{model_name}/"))
        assert [row.workspace for row in rows] == [tenant[0]], model_name
        assert "grace" not in alice_client.get(f"/admin/guardrails/{model_name}/").content.decode()
        other = model.objects.exclude(workspace=tenant[0]).get()
        response = alice_client.get(f"/admin/guardrails/{model_name}/{other.pk}/change/", follow=True)
        assert response.redirect_chain == [("/admin/", 302)], model_name


def test_the_decision_list_says_why_and_filters_by_action_allowed_channel_and_date(
    two_workspaces, alice_client
):
    ada = two_workspaces["ada"]
    policy.check(policy.NUDGE_SEND, ada, {"channel": "in_app", "purpose": "onboarding"})
    path = "/admin/guardrails/policydecision/"

    denied = listed(alice_client.get(path, {"allowed__exact": "0"}))
    in_app = listed(alice_client.get(path, {"channel__exact": "in_app", "action__exact": "nudge.send"}))
    today = listed(
        alice_client.get(
            path, {"decided_at__range__gte_0": "2000-01-01", "decided_at__range__gte_1": "00:00:00"}
        )
    )

    assert [row.channel for row in denied] == ["sms"]
    assert [row.allowed for row in in_app] == [True]
    assert len(today) == 2
    page = alice_client.get(path).content.decode()
    assert "no consent for sms/marketing on record, and sms/marketing needs an explicit grant" in page
    assert "all checks passed" in page


def test_the_ledgers_are_read_only_and_the_policy_is_editable(two_workspaces, alice_client, tenant):
    record = ConsentRecord.objects.get(workspace=tenant[0])
    assert alice_client.get("/admin/guardrails/consentrecord/add/").status_code == 403
    alice_client.post(f"/admin/guardrails/consentrecord/{record.pk}/change/", {"granted": "False"})
    assert ConsentRecord.objects.get(pk=record.pk).granted is True

    policy_row = WorkspacePolicy.objects.get(workspace=tenant[0])
    response = alice_client.post(
        f"/admin/guardrails/workspacepolicy/{policy_row.pk}/change/",
        {
            "daily_nudge_cap": "3",
            "quiet_hours_start": "21:00",
            "quiet_hours_end": "08:00",
            "llm_daily_budget_usd": "12.50",
            "data_region": "eu",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    policy_row.refresh_from_db()
    assert (policy_row.daily_nudge_cap, str(policy_row.quiet_hours_start), policy_row.data_region) == (
        3,
        "21:00:00",
        "eu",
    )


def test_a_suppression_can_be_found_by_the_address_it_was_made_for(two_workspaces, alice_client):
    rows = listed(alice_client.get("/admin/guardrails/suppression/", {"subject": "ADA@example.com"}))
    none = listed(alice_client.get("/admin/guardrails/suppression/", {"subject": "grace@example.com"}))

    assert [row.reason for row in rows] == ["hard_bounce"]
    assert none == []


def test_the_end_user_page_says_why_a_nudge_was_denied(two_workspaces, alice_client):
    ada = two_workspaces["ada"]
    decision = PolicyDecision.objects.get(end_user=ada)
    reasons = [reason["message"] for reason in decision.reasons]

    page = alice_client.get(f"/admin/onboarding/enduser/{ada.pk}/change/").content.decode()

    assert not decision.allowed and reasons
    assert "Guardrail decisions" in page
    assert "nudge.send" in page and "denied" in page
    for message in reasons:
        assert escape(message) in page
