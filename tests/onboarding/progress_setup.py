"""A published default path with one step of each kind, and end users enrolled on it by identify:
what the progress API and websocket tests start from."""

from rest_framework.test import APIClient

from onboarding.models import Enrollment
from paths import services as path_services
from paths.models import PathVersion
from tenancy.models import Workspace
from tests.conftest import basic_auth

STEPS = [
    {
        "key": "create-project",
        "title": "Create a project",
        "completion": "event",
        "event_name": "Project Created",
    },
    {
        "key": "profile",
        "title": "Tell us about you",
        "completion": "form",
        "questions": [
            {
                "key": "role",
                "label": "Your role",
                "type": "choice",
                "required": True,
                "choices": ["admin", "dev"],
            },
            {"key": "team_size", "label": "Team size", "type": "number", "required": True},
            {"key": "newsletter", "label": "Newsletter", "type": "boolean", "required": False},
        ],
    },
    {"key": "invite", "title": "Invite a teammate", "completion": "api", "optional": True},
    {"key": "connect", "title": "Connect an integration", "completion": "api"},
]
STEP_KEYS = [step["key"] for step in STEPS]


def published_path(workspace: Workspace) -> PathVersion:
    path = path_services.path_create(workspace=workspace, key="main", name="Main path", is_default=True)
    draft = path.versions.get()
    path_services.path_version_replace_steps(path_version=draft, steps=STEPS)
    return path_services.path_version_publish(path_version=draft)


def enrol(write_key: str, user_id: str, workspace: Workspace) -> Enrollment:
    """Identify through the API, as a client would: the planner enrols the user."""
    response = APIClient().post(
        "/v1/identify",
        {"userId": user_id, "traits": {"persona": "admin"}},
        format="json",
        HTTP_AUTHORIZATION=basic_auth(write_key),
    )
    assert response.status_code == 200, response.content
    return Enrollment.objects.get(workspace=workspace, end_user__external_id=user_id)


def track(write_key: str, user_id: str, event: str, **properties) -> int:
    response = APIClient().post(
        "/v1/track",
        {"userId": user_id, "event": event, "properties": properties},
        format="json",
        HTTP_AUTHORIZATION=basic_auth(write_key),
    )
    return response.status_code
