"""Writes of the policy sub-package: the consent ledger (one grant or withdrawal per call)."""

import logging

from django.db import transaction

from guardrails.models import Channel, ConsentRecord, Purpose
from tenancy.audit import audit_record
from tenancy.models import EndUser

logger = logging.getLogger(__name__)


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
