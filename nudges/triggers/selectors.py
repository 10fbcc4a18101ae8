"""Reads of triggers for the engine: which triggers of a workspace are active, and which
workspaces the periodic scan visits."""

from django.db.models import QuerySet

from nudges.models import Trigger
from tenancy.models import Workspace


def triggers_active(*, workspace_id: int, kinds: tuple[str, ...]) -> list[Trigger]:
    """The workspace's active triggers of these kinds, oldest first."""
    if not kinds:
        return []
    return list(
        Trigger.objects.filter(workspace_id=workspace_id, kind__in=kinds, is_active=True).order_by("pk")
    )


def workspaces_with_active_triggers(*, kinds: tuple[str, ...]) -> QuerySet[Workspace]:
    """Every workspace with an active trigger of these kinds, in creation order."""
    workspace_ids = (
        Trigger.objects.filter(is_active=True, kind__in=kinds)
        .values_list("workspace_id", flat=True)
        .distinct()
    )
    return Workspace.objects.filter(pk__in=list(workspace_ids)).order_by("pk")
