"""Reads of stored events."""

from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.db.models.fields.json import KeyTransform

from onboarding.models import Event
from tenancy.models import EndUser, Workspace


def events_for_end_user(*, workspace: Workspace, end_user: EndUser) -> QuerySet[Event]:
    return Event.objects.filter(workspace=workspace, end_user=end_user).order_by("timestamp")


def events_matching(
    *,
    workspace: Workspace,
    start: datetime,
    end: datetime,
    name: str | None = None,
    where: dict[str, Any] | None = None,
) -> QuerySet:
    """(end_user_id, timestamp) of the events in [start, end), of one name when given, whose
    properties equal `where` (a list value: one of). For analytics' raw aggregates, which embed
    the query as a subquery; with a name it is served by event_funnel_idx."""
    events = Event.objects.filter(workspace=workspace, timestamp__gte=start, timestamp__lt=end)
    if name is not None:
        events = events.filter(name=name)
    for position, (key, value) in enumerate((where or {}).items()):
        # An explicit KeyTransform: a key such as "contains" or "a__b" stays one plain key.
        alias = f"property_{position}"
        events = events.alias(**{alias: KeyTransform(key, "properties")})
        lookup = f"{alias}__in" if isinstance(value, list) else alias
        events = events.filter(**{lookup: value})
    return events.values("end_user_id", "timestamp")


def events_named(*, workspace: Workspace, names: list[str], start: datetime, end: datetime) -> QuerySet:
    """(end_user_id, timestamp) of the events of any of `names` in [start, end)."""
    return Event.objects.filter(
        workspace=workspace, name__in=names, timestamp__gte=start, timestamp__lt=end
    ).values("end_user_id", "timestamp")
