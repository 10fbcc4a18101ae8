"""A path with one step of each kind, built with factories, for the progress engine's tests."""

from datetime import UTC, datetime, timedelta

from paths.models import PathVersion
from tenancy.models import Workspace
from tests.factories import PathFactory, PublishedPathVersionFactory, StepFactory

# Event times are in the past and whole seconds, so they read well in assertions.
T0 = (datetime.now(UTC) - timedelta(days=3)).replace(microsecond=0)

ROLE = {"key": "role", "label": "Your role", "type": "choice", "required": True, "choices": ["admin", "dev"]}
TEAM_SIZE = {"key": "team_size", "label": "Team size", "type": "number", "required": True}
TOPICS = {"key": "topics", "label": "Topics", "type": "multi_choice", "choices": ["api", "ui"]}
NOTE = {"key": "note", "label": "Anything else?", "type": "text"}
NEWSLETTER = {"key": "newsletter", "label": "Newsletter", "type": "boolean"}


def onboarding_path(workspace: Workspace, *, key: str = "basics", is_default: bool = True) -> PathVersion:
    """create (event, condition) > profile (form) > invite (event x2 within 7 days, optional) >
    connect (api) > share (event, optional)."""
    path = PathFactory(workspace=workspace, key=key, is_default=is_default)
    version = PublishedPathVersionFactory(path=path)
    StepFactory(
        path_version=version,
        key="create",
        order=1,
        event_name="Project Created",
        conditions=[{"property": "template", "operator": "exists"}],
    )
    StepFactory(
        path_version=version,
        key="profile",
        order=2,
        completion="form",
        event_name="",
        questions=[ROLE, TEAM_SIZE, TOPICS, NOTE, NEWSLETTER],
    )
    StepFactory(
        path_version=version,
        key="invite",
        order=3,
        optional=True,
        event_name="Teammate Invited",
        count=2,
        window=timedelta(days=7),
        window_anchor="enrollment",
    )
    StepFactory(path_version=version, key="connect", order=4, completion="api", event_name="")
    StepFactory(path_version=version, key="share", order=5, optional=True, event_name="Dashboard Shared")
    return version


def event_path(workspace: Workspace, *, key: str = "events", is_default: bool = True) -> PathVersion:
    """Three event steps: create > invite (x2, within 2 days of create) > report."""
    path = PathFactory(workspace=workspace, key=key, is_default=is_default)
    version = PublishedPathVersionFactory(path=path)
    StepFactory(path_version=version, key="create", order=1, event_name="Project Created")
    StepFactory(
        path_version=version,
        key="invite",
        order=2,
        event_name="Teammate Invited",
        count=2,
        window=timedelta(days=2),
        conditions=[{"property": "role", "operator": "in", "value": ["admin", "member"]}],
    )
    StepFactory(
        path_version=version,
        key="report",
        order=3,
        event_name="Report Viewed",
        conditions=[{"property": "seconds", "operator": "gte", "value": 30}],
    )
    return version


def at(hours: float) -> str:
    return (T0 + timedelta(hours=hours)).isoformat()
