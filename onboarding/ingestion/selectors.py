"""Reads of stored events."""

from datetime import UTC, datetime
from typing import Any, Literal

from django.db.models import Count, F, QuerySet
from django.db.models.fields.json import KeyTransform
from django.db.models.functions import Trunc, TruncDate

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


def events_received_per_bucket(
    *, workspace: Workspace, start: datetime, end: datetime, bucket: Literal["minute", "hour"]
) -> dict[datetime, int]:
    """How many of the workspace's events were received (stored) in each UTC minute or hour of
    [start, end), buckets without events left out. One GROUP BY; on PostgreSQL the BRIN index on
    received_at (migration 0011) bounds the scan to the window's blocks, so keep windows short."""
    rows = (
        Event.objects.filter(workspace=workspace, received_at__gte=start, received_at__lt=end)
        .annotate(bucket=Trunc("received_at", bucket, tzinfo=UTC))
        .values("bucket")
        .annotate(events=Count("pk"))
        .order_by("bucket")
    )
    return {row["bucket"]: row["events"] for row in rows}


# --- Reads for analytics' event rollups (aggregated there, in the database) ----------------------


def events_received_between(*, workspace: Workspace, start: datetime, end: datetime) -> QuerySet:
    """(end_user_id, timestamp) of the events received (stored) in [start, end); on PostgreSQL the
    BRIN index on received_at bounds the scan to the window's blocks."""
    return Event.objects.filter(workspace=workspace, received_at__gte=start, received_at__lt=end).values(
        "end_user_id", "timestamp"
    )


def events_of_end_users(*, workspace: Workspace, end_user_ids: QuerySet) -> QuerySet:
    """(end_user_id, timestamp) of every event of the end users in `end_user_ids` (a values query
    of ids); served by event_user_time_idx."""
    return Event.objects.filter(workspace=workspace, end_user_id__in=end_user_ids).values(
        "end_user_id", "timestamp"
    )


def event_counts_by_day_and_name(*, workspace: Workspace, start: datetime, end: datetime) -> QuerySet:
    """(day, event_name, events): the events received in [start, end) counted per UTC day of their
    timestamp and name."""
    return (
        Event.objects.filter(workspace=workspace, received_at__gte=start, received_at__lt=end)
        .annotate(day=TruncDate("timestamp", tzinfo=UTC), event_name=F("name"))
        .values("day", "event_name")
        .annotate(events=Count("pk"))
        .order_by()
    )
