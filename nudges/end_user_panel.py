"""The end user's timeline (nudges.timeline), a panel of their admin page (onboarding.end_user_panels):
events, steps and nudges with their decision traces."""

from django.template.loader import render_to_string

from nudges.timeline import end_user_timeline
from tenancy.models import EndUser


def timeline_html(end_user: EndUser) -> str:
    items = end_user_timeline(workspace=end_user.workspace, end_user=end_user)
    return render_to_string("admin/nudges/timeline.html", {"items": items})
