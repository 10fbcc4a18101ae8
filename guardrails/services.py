"""Writes of the guardrails app: one function per action, keyword-only, one transaction each."""

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from guardrails import selectors
from guardrails.models import Channel, ConsentRecord, Preference, Purpose
from guardrails.policy.consent import consent_effective
from guardrails.preferences.validation import UNSET, preferences_parse
from guardrails.secrets import workspace_secret_set, workspace_secrets_rotate  # noqa: F401
from tenancy.audit import audit_record
from tenancy.models import EndUser

logger = logging.getLogger(__name__)

# --- Consent ledger --------------------------------------------------------------------------------


def _actor_label(actor, source: str, actor_label: str) -> str:
    if actor_label:
        return actor_label
    if getattr(actor, "pk", None):
        return actor.get_username()
    return {
        ConsentRecord.Source.PREFERENCE_CENTRE: "end user (preference centre)",
        ConsentRecord.Source.UNSUBSCRIBE_LINK: "end user (unsubscribe link)",
    }.get(source, "system")


@transaction.atomic
def consent_record(
    *,
    end_user: EndUser,
    channel: str,
    purpose: str,
    granted: bool,
    source: str,
    actor=None,
    actor_label: str = "",
    request_id: str = "",
) -> ConsentRecord:
    """Append one grant or withdrawal to the ledger, and its audit row."""
    if channel not in Channel.values:
        raise ValueError(f"unknown channel {channel!r}")
    if purpose not in Purpose.values:
        raise ValueError(f"unknown purpose {purpose!r}")
    if source not in ConsentRecord.Source.values:
        raise ValueError(f"unknown consent source {source!r}")
    record = ConsentRecord.objects.create(
        workspace_id=end_user.workspace_id,
        end_user=end_user,
        channel=channel,
        purpose=purpose,
        granted=granted,
        source=source,
    )
    audit_record(
        workspace=end_user.workspace,
        action="consent.granted" if granted else "consent.withdrawn",
        actor=actor,
        actor_label=_actor_label(actor, source, actor_label),
        obj=record,
        after={"channel": channel, "purpose": purpose, "granted": granted, "source": source},
        request_id=request_id,
    )
    logger.info(
        "guardrails.policy.consent.recorded",
        extra={
            "workspace_id": end_user.workspace_id,
            "end_user_id": end_user.pk,
            "channel": channel,
            "purpose": purpose,
            "granted": granted,
            "source": source,
        },
    )
    return record


def unsubscribe_apply(*, end_user: EndUser, channel: str, purpose: str, request_id: str = "") -> bool:
    """Withdraw consent from a one-click unsubscribe link; False when it was already withdrawn
    (mail clients may POST twice), so the ledger only records a change."""
    with transaction.atomic():
        _lock_preferences(end_user)
        current = selectors.consent_current(end_user=end_user)
        if not consent_effective(current, channel, purpose):
            return False
        consent_record(
            end_user=end_user,
            channel=channel,
            purpose=purpose,
            granted=False,
            source=ConsentRecord.Source.UNSUBSCRIBE_LINK,
            request_id=request_id,
        )
    return True


# --- Preferences -----------------------------------------------------------------------------------


def _lock_preferences(end_user: EndUser) -> Preference:
    """The user's Preference row, created if needed and locked: concurrent updates of one
    user's preferences and consent run one after the other, so each compares against the last."""
    preference, _ = Preference.objects.get_or_create(
        end_user=end_user, defaults={"workspace_id": end_user.workspace_id}
    )
    return Preference.objects.select_for_update().get(pk=preference.pk)


def preferences_update(
    *,
    end_user: EndUser,
    data: dict,
    source: str,
    actor=None,
    actor_label: str = "",
    request_id: str = "",
    now: datetime | None = None,
) -> dict:
    """Apply a preferences update (see guardrails.preferences.validation for its shape) all at once, or
    nothing: PreferencesInvalid names every bad field. Consent changes go to the ledger, only
    for the values that differ from the current ones. Returns the new preferences_state."""
    now = now or timezone.now()
    with transaction.atomic():
        preference = _lock_preferences(end_user)
        changes = preferences_parse(
            data, now=now, current=selectors.preferences_state(end_user=end_user, now=now)
        )
        current = selectors.consent_current(end_user=end_user)
        changed_consent = []
        for (channel, purpose), granted in changes.consent.items():
            if consent_effective(current, channel, purpose) != granted:
                consent_record(
                    end_user=end_user,
                    channel=channel,
                    purpose=purpose,
                    granted=granted,
                    source=source,
                    actor=actor,
                    actor_label=actor_label,
                    request_id=request_id,
                )
                changed_consent.append(f"{channel}.{purpose}")
        changed_fields = []
        if changes.quiet_hours is not UNSET:
            start, end = changes.quiet_hours or (None, None)
            if (preference.quiet_hours_start, preference.quiet_hours_end) != (start, end):
                preference.quiet_hours_start, preference.quiet_hours_end = start, end
                changed_fields += ["quiet_hours_start", "quiet_hours_end"]
        if changes.snooze_until is not UNSET and preference.snooze_until != changes.snooze_until:
            preference.snooze_until = changes.snooze_until
            changed_fields.append("snooze_until")
        if changes.do_not_disturb is not UNSET and preference.do_not_disturb != changes.do_not_disturb:
            preference.do_not_disturb = changes.do_not_disturb
            changed_fields.append("do_not_disturb")
        if changed_fields:
            preference.save(update_fields=[*changed_fields, "updated_at"])
    logger.info(
        "guardrails.preferences.validation.updated",
        extra={
            "workspace_id": end_user.workspace_id,
            "end_user_id": end_user.pk,
            "source": source,
            "consent_changed": changed_consent,
            "fields_changed": changed_fields,
        },
    )
    return selectors.preferences_state(end_user=end_user, now=now)
