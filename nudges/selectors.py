"""Reads of nudges. Public endpoints (tracking) find a nudge by its signed id only."""

from django.db.models import QuerySet

from nudges.models import Nudge
from tenancy.models import EndUser, Workspace


def nudge_get_by_pk(*, nudge_id: int) -> Nudge | None:
    """For signed links, whose token names the nudge: the signature is the authorisation."""
    return Nudge.objects.filter(pk=nudge_id).first()


def nudges_for_end_user(*, workspace: Workspace, end_user: EndUser) -> QuerySet[Nudge]:
    return Nudge.objects.filter(workspace=workspace, end_user=end_user).order_by("-created_at", "-pk")
