"""Reads of stored events."""

from django.db.models import QuerySet

from onboarding.models import Event
from tenancy.models import EndUser, Workspace


def events_for_end_user(*, workspace: Workspace, end_user: EndUser) -> QuerySet[Event]:
    return Event.objects.filter(workspace=workspace, end_user=end_user).order_by("timestamp")
