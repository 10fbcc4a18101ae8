"""Reads of the guardrails app. Each takes the workspace, or an end user (who carries theirs)."""

from collections.abc import Iterable
from datetime import datetime

from django.db.models import F, QuerySet, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from guardrails.models import ConsentRecord, PolicyDecision, Preference, Suppression, WorkspacePolicy
from guardrails.policy.consent import PAIRS, consent_effective
from guardrails.policy.localtime import FALLBACK_ZONE_NAME, format_wall_time, zone_named
from guardrails.preferences import subjects
from guardrails.secrets import workspace_secret_get  # noqa: F401
from tenancy.models import EndUser, Workspace

# --- Consent ---------------------------------------------------------------------------------------


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


# --- Preferences and workspace policy ----------------------------------------------------------------


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


def end_user_zone_name(*, end_user: EndUser) -> str:
    """The user's IANA time zone, or UTC when they have none or an unknown one."""
    return zone_named(end_user.timezone).key if end_user.timezone else FALLBACK_ZONE_NAME


def preferences_state(*, end_user: EndUser, now: datetime | None = None) -> dict:
    """What the preferences API returns: effective consent, quiet hours, snooze, do-not-disturb.

    quiet_hours.source says whose hours apply: the user's own, the workspace default, or none;
    a snooze that has passed reads as null.
    """
    now = now or timezone.now()
    preference = preference_get(end_user=end_user)
    snooze_until = preference.snooze_until if preference else None
    effective = consent_effective_all(end_user=end_user)
    channels: dict[str, dict[str, bool]] = {}
    for (channel, purpose), allowed in effective.items():
        channels.setdefault(channel, {})[purpose] = allowed
    start = end = None
    source = None
    if preference is not None and None not in (preference.quiet_hours_start, preference.quiet_hours_end):
        start, end, source = preference.quiet_hours_start, preference.quiet_hours_end, "user"
    else:
        policy = workspace_policy_get(workspace=end_user.workspace_id)
        if None not in (policy.quiet_hours_start, policy.quiet_hours_end):
            start, end, source = policy.quiet_hours_start, policy.quiet_hours_end, "workspace"
    return {
        "user_id": end_user.external_id,
        "channels": channels,
        "quiet_hours": {
            "start": format_wall_time(start) if start is not None else None,
            "end": format_wall_time(end) if end is not None else None,
            "timezone": end_user_zone_name(end_user=end_user),
            "source": source,
        },
        "snooze_until": snooze_until if snooze_until is not None and snooze_until > now else None,
        "do_not_disturb": preference.do_not_disturb if preference else False,
    }


def end_user_get_by_pk(*, workspace_id: int, end_user_id: int) -> EndUser | None:
    return (
        EndUser.objects.filter(workspace_id=workspace_id, pk=end_user_id).select_related("workspace").first()
    )


# --- Erasure (guardrails.gdpr.erasure) --------------------------------------------------------------------


def erased_identifiers(
    *, workspace: Workspace | int, user_ids: Iterable[str] = (), anonymous_ids: Iterable[str] = ()
) -> tuple[set[str], set[str]]:
    """(erased user ids, erased anonymous ids) among those given: one query on the digests."""
    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    wanted: dict[str, tuple[str, str]] = {}
    for kind, values in ((subjects.USER_ID, user_ids), (subjects.ANONYMOUS_ID, anonymous_ids)):
        for value in values:
            if value and value.strip():
                wanted[subjects.subject_digest(workspace_id, kind, value)] = (kind, value)
    if not wanted:
        return set(), set()
    found = Suppression.objects.filter(
        workspace_id=workspace_id, channel="", reason=Suppression.Reason.ERASED, subject_digest__in=wanted
    ).values_list("subject_digest", flat=True)
    erased_users, erased_devices = set(), set()
    for digest in found:
        kind, value = wanted[digest]
        (erased_users if kind == subjects.USER_ID else erased_devices).add(value)
    return erased_users, erased_devices


def erased_user_ids(*, workspace: Workspace | int, user_ids: Iterable[str]) -> set[str]:
    """The user ids among these whose person was erased (and must not be re-created)."""
    return erased_identifiers(workspace=workspace, user_ids=user_ids)[0]


def workspace_has_erasures(*, workspace_id: int) -> bool:
    return Suppression.objects.filter(workspace_id=workspace_id, reason=Suppression.Reason.ERASED).exists()
