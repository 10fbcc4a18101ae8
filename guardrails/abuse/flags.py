"""Abuse flags: recording one for a human to look at, and resolving them.

A subject (an API key, an end user, or a token's holder) gets at most one open flag of a kind per
FLAG_COOLDOWN, so a burst that lasts, or a detector pass run twice, adds no second row. An open
flag on an end user stops their nudges until it is resolved (guardrails.policy.engine reads it).
"""

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from guardrails.models import AbuseFlag
from tenancy.models import ApiKey, EndUser, Workspace

logger = logging.getLogger(__name__)

FLAG_COOLDOWN = timedelta(hours=1)


def subject_of(*, api_key: ApiKey | None = None, end_user: EndUser | None = None, other: str = "") -> str:
    if end_user is not None:
        return f"end_user:{end_user.pk}"
    if api_key is not None:
        return f"api_key:{api_key.pk}"
    return other


@transaction.atomic
def abuse_flag_record(
    *,
    workspace: Workspace,
    kind: str,
    detail: dict[str, Any],
    api_key: ApiKey | None = None,
    end_user: EndUser | None = None,
    subject: str = "",
) -> AbuseFlag | None:
    """A new open flag, or None when the subject already has an open one of this kind this hour.

    `detail` holds rates, baselines and counts, never payloads or contact data.
    """
    if kind not in AbuseFlag.Kind.values:
        raise ValueError(f"unknown abuse flag kind {kind!r}")
    subject = subject or subject_of(api_key=api_key, end_user=end_user)
    if not subject:
        raise ValueError("an abuse flag needs an API key, an end user or a subject")
    open_recently = AbuseFlag.objects.filter(
        workspace=workspace,
        kind=kind,
        detail__subject=subject,
        resolved_at__isnull=True,
        created_at__gte=timezone.now() - FLAG_COOLDOWN,
    )
    if open_recently.exists():
        return None
    flag = AbuseFlag.objects.create(
        workspace=workspace,
        api_key=api_key,
        end_user=end_user,
        kind=kind,
        detail={**detail, "subject": subject},
    )
    logger.warning(
        "guardrails.abuse.detection.flagged",
        extra={
            "workspace_id": workspace.pk,
            "kind": kind,
            "abuse_flag_id": flag.pk,
            "api_key_id": api_key.pk if api_key else None,
            "end_user_id": end_user.pk if end_user else None,
        },
    )
    return flag


@transaction.atomic
def abuse_flags_resolve(*, flags: QuerySet[AbuseFlag]) -> int:
    """Mark the open ones among `flags` resolved; returns how many. The admin action that calls
    this is recorded in the audit log by the admin site (tenancy.admin_changes)."""
    resolved = flags.filter(resolved_at__isnull=True).update(resolved_at=timezone.now())
    logger.info("guardrails.abuse.detection.resolved", extra={"resolved": resolved})
    return resolved
