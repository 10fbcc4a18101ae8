"""The in-app inbox: an end user's in-app nudges that were sent, and what they did with them.

Reads (`inbox_list`, `inbox_nudge_get`) are scoped by workspace and end user, so a caller can
only ever reach its own user's nudges. Writes go through `nudges.services.nudge_status_advance`:
seen moves a nudge to opened, clicked to clicked (a bandit reward, once), dismissed sets
`dismissed_at` and records an "opened" event (a dismissed nudge was seen). `inbox_item` is the
shape of one nudge in the API and in the websocket frame of the in-app gateway.
"""

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from guardrails.models import Channel
from nudges import services
from nudges.content import links
from nudges.delivery import tracking
from nudges.models import Nudge
from tenancy.models import EndUser, Workspace

logger = logging.getLogger(__name__)

Status = Nudge.Status

# What the inbox shows: in-app nudges that left the pipeline (sent or later, still reaching the user).
VISIBLE = (Status.SENT, Status.DELIVERED, Status.OPENED, Status.CLICKED, Status.CONVERTED)
SOURCE = "inbox"
DEFAULT_LIMIT = 20
MAX_LIMIT = 100


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def inbox_item(nudge: Nudge, *, status: str | None = None) -> dict[str, Any]:
    """One nudge as the inbox API and the websocket frame show it (no contact data). A nudge
    whose link leads nowhere (nudges.content.links) has no call to action: cta_text "", cta_url null."""
    has_destination = bool(links.call_to_action_destination(workspace=nudge.workspace, link=nudge.cta_url))
    return {
        "id": nudge.pk,
        "subject": nudge.subject,
        "body": nudge.body,
        "cta_text": nudge.cta_text if has_destination else "",
        # The signed click link: the click is recorded, then the stored link is followed.
        "cta_url": tracking.click_url(nudge_id=nudge.pk) if has_destination else None,
        "ui_component": nudge.ui_component,
        "status": str(status or nudge.status),
        "created_at": _iso(nudge.created_at),
        "sent_at": _iso(nudge.sent_at),
        "seen_at": _iso(nudge.seen_at),
        "clicked_at": _iso(nudge.clicked_at),
        "dismissed_at": _iso(nudge.dismissed_at),
    }


# --- Reads -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InboxPage:
    nudges: list[Nudge]
    next_before: int | None  # the cursor of the next (older) page, None on the last one


def _inbox(*, workspace: Workspace, end_user: EndUser):
    return Nudge.objects.filter(
        workspace=workspace, end_user=end_user, channel=Channel.IN_APP, status__in=VISIBLE
    ).select_related("workspace")


def inbox_list(
    *,
    workspace: Workspace,
    end_user: EndUser,
    include_dismissed: bool = False,
    limit: int = DEFAULT_LIMIT,
    before: int | None = None,
) -> InboxPage:
    """The user's inbox, newest first; `before` (a nudge id from `next_before`) pages back."""
    inbox = _inbox(workspace=workspace, end_user=end_user)
    nudges = inbox if include_dismissed else inbox.filter(dismissed_at__isnull=True)
    if before is not None:
        # Looked up in the whole inbox: the cursor's own nudge may have been dismissed since.
        cursor = inbox.filter(pk=before).values_list("created_at", flat=True).first()
        if cursor is None:
            return InboxPage([], None)
        nudges = nudges.filter(Q(created_at__lt=cursor) | Q(created_at=cursor, pk__lt=before))
    limit = max(1, min(limit, MAX_LIMIT))
    page = list(nudges.order_by("-created_at", "-pk")[: limit + 1])
    next_before = page[limit - 1].pk if len(page) > limit else None
    return InboxPage(page[:limit], next_before)


def inbox_nudge_get(*, workspace: Workspace, end_user: EndUser, nudge_id: int) -> Nudge | None:
    """One nudge of this user's inbox (dismissed ones included); None for anything else."""
    return _inbox(workspace=workspace, end_user=end_user).filter(pk=nudge_id).first()


# --- Writes ----------------------------------------------------------------------------------------


def _locked(nudge: Nudge) -> Nudge:
    return Nudge.objects.select_for_update().get(pk=nudge.pk)


def _log(action: str, nudge: Nudge, changed: bool) -> None:
    logger.info(
        "nudges.inbox.marked",
        extra={
            "workspace_id": nudge.workspace_id,
            "nudge_id": nudge.pk,
            "action": action,
            "changed": changed,
        },
    )


@transaction.atomic
def inbox_mark_seen(*, nudge: Nudge, at: datetime | None = None) -> Nudge:
    """The user saw it: opened, once (showing it again records nothing new)."""
    locked = _locked(nudge)
    if locked.seen_at is not None:
        _log("seen", locked, False)
        return locked
    at = at or timezone.now()
    services.nudge_status_advance(
        nudge=locked,
        status=Status.OPENED,
        source=SOURCE,
        detail={"action": "seen"},
        at=at,
        fields={"seen_at": at},
    )
    _log("seen", locked, True)
    return locked


@transaction.atomic
def inbox_mark_clicked(*, nudge: Nudge, at: datetime | None = None) -> Nudge:
    """The user followed its call to action in the app: every click is recorded, the first one
    rewards the template version. A click implies it was seen."""
    locked = _locked(nudge)
    at = at or timezone.now()
    fields = {"seen_at": at} if locked.seen_at is None else {}
    changed = services.nudge_status_advance(
        nudge=locked,
        status=Status.CLICKED,
        source=SOURCE,
        detail={"action": "clicked"},
        at=at,
        fields=fields,
    )
    _log("clicked", locked, changed)
    return locked


@transaction.atomic
def inbox_dismiss(*, nudge: Nudge, at: datetime | None = None) -> Nudge:
    """The user closed it: it leaves the inbox. Recorded as an "opened" event (dismissing means
    it was seen) with the action; dismissing again changes nothing."""
    locked = _locked(nudge)
    if locked.dismissed_at is not None:
        _log("dismissed", locked, False)
        return locked
    at = at or timezone.now()
    fields: dict[str, Any] = {"dismissed_at": at}
    if locked.seen_at is None:
        fields["seen_at"] = at
    services.nudge_status_advance(
        nudge=locked,
        status=Status.OPENED,
        source=SOURCE,
        detail={"action": "dismissed"},
        at=at,
        fields=fields,
    )
    _log("dismissed", locked, True)
    return locked
