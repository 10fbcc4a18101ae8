"""Reads of EventDayRollup: which event names a workspace sends and how often, for the event
funnel builder (so a product team names events that exist) without scanning events."""

from datetime import date

from django.db.models import Sum

from analytics.models import EventDayRollup
from tenancy.models import Workspace

TOP_NAMES = 50


def event_names_by_volume(*, workspace: Workspace, first_day: date, last_day: date) -> list[tuple[str, int]]:
    """(event name, events) over the UTC days [first_day, last_day] of the events' timestamps,
    most frequent first; nameless calls (identify, group, alias) left out."""
    rows = (
        EventDayRollup.objects.filter(workspace=workspace, day__gte=first_day, day__lte=last_day)
        .exclude(event_name="")
        .values("event_name")
        .annotate(total=Sum("events"))
        .order_by("-total", "event_name")[:TOP_NAMES]
    )
    return [(row["event_name"], int(row["total"])) for row in rows]
