"""Writes of the preferences sub-package: a preferences update and a one-click unsubscribe,
each in one transaction, consent changes going to the ledger (guardrails.policy.services)."""

import logging
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from guardrails.models import ConsentRecord, Preference
from guardrails.policy import selectors as policy_selectors
from guardrails.policy.consent import consent_effective
from guardrails.policy.services import consent_record
from guardrails.preferences import selectors
from guardrails.preferences.validation import UNSET, preferences_parse
from tenancy.models import EndUser

logger = logging.getLogger(__name__)


def unsubscribe_apply(*, end_user: EndUser, channel: str, purpose: str, request_id: str = "") -> bool:
    """Withdraw consent from a one-click unsubscribe link; False when it was already withdrawn
    (mail clients may POST twice), so the ledger only records a change."""
    with transaction.atomic():
        _lock_preferences(end_user)
        current = policy_selectors.consent_current(end_user=end_user)
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
        current = policy_selectors.consent_current(end_user=end_user)
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
