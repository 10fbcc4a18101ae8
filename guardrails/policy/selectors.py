"""Reads of the policy sub-package: consent (the ledger's latest values), the workspace's policy,
the user's preference row the rules read (quiet hours, snooze) and the recorded decisions.
Each takes the workspace, or an end user (who carries theirs)."""

from django.db.models import F, QuerySet, Window
from django.db.models.functions import RowNumber

from guardrails.models import ConsentRecord, PolicyDecision, Preference, WorkspacePolicy
from guardrails.policy.consent import PAIRS, consent_effective
from tenancy.models import EndUser, Workspace


def consent_current(*, end_user: EndUser) -> dict[tuple[str, str], bool | None]:
    """The latest recorded value per (channel, purpose); None where the ledger has no record.

    One query: the latest row of each pair by a window function (PostgreSQL and SQLite alike).
    """
    latest = (
        ConsentRecord.objects.filter(workspace_id=end_user.workspace_id, end_user=end_user)
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("channel"), F("purpose")],
                order_by=[F("recorded_at").desc(), F("pk").desc()],
            )
        )
        .filter(rank=1)
        .values_list("channel", "purpose", "granted")
    )
    current: dict[tuple[str, str], bool | None] = dict.fromkeys(PAIRS)
    for channel, purpose, granted in latest:
        current[(channel, purpose)] = granted
    return current


def consent_effective_all(*, end_user: EndUser) -> dict[tuple[str, str], bool]:
    """Whether each (channel, purpose) is allowed now: the ledger, else guardrails.policy.consent.DEFAULTS."""
    current = consent_current(end_user=end_user)
    return {(channel, purpose): consent_effective(current, channel, purpose) for channel, purpose in PAIRS}


def consent_latest(*, end_user: EndUser, channel: str, purpose: str) -> ConsentRecord | None:
    return (
        ConsentRecord.objects.filter(
            workspace_id=end_user.workspace_id, end_user=end_user, channel=channel, purpose=purpose
        )
        .order_by("-recorded_at", "-pk")
        .first()
    )


def consent_history(*, end_user: EndUser) -> QuerySet[ConsentRecord]:
    """Every grant and withdrawal, oldest first."""
    return ConsentRecord.objects.filter(workspace_id=end_user.workspace_id, end_user=end_user).order_by(
        "recorded_at", "pk"
    )


def policy_decisions_recent(*, end_user: EndUser, limit: int = 20) -> QuerySet[PolicyDecision]:
    """The user's latest guardrail decisions, newest first: why they did or didn't get something."""
    return PolicyDecision.objects.filter(workspace_id=end_user.workspace_id, end_user=end_user).order_by(
        "-decided_at", "-pk"
    )[:limit]


def workspace_policy_get(*, workspace: Workspace | int) -> WorkspacePolicy:
    """The workspace's policy; an unsaved one with the defaults when it has none."""
    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    policy = WorkspacePolicy.objects.filter(workspace_id=workspace_id).first()
    return policy or WorkspacePolicy(workspace_id=workspace_id)


def preference_get(*, end_user: EndUser) -> Preference | None:
    return Preference.objects.filter(workspace_id=end_user.workspace_id, end_user=end_user).first()
