"""Reads of the preferences sub-package: a user's preferences as the API returns them, and the
end user an unsubscribe link names."""

from datetime import datetime

from django.utils import timezone

from guardrails.policy.localtime import FALLBACK_ZONE_NAME, format_wall_time, zone_named
from guardrails.policy.selectors import consent_effective_all, preference_get, workspace_policy_get
from tenancy.models import EndUser


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
