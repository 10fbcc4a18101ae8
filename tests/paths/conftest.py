"""Fixtures for the paths tests: a small onboarding path and the two tenants' workspaces."""

from datetime import timedelta

import pytest

from paths import services
from paths.models import Path

STEPS = [
    {
        "key": "welcome",
        "title": "Say hello",
        "body": "Tell us about you.",
        "completion": "form",
        "ui_component": "modal",
        "questions": [
            {
                "key": "role",
                "label": "Your role",
                "type": "choice",
                "required": True,
                "choices": ["admin", "developer"],
            },
            {"key": "team_size", "label": "Team size", "type": "number", "required": False},
        ],
    },
    {
        "key": "connect",
        "title": "Connect an integration",
        "event_name": "Integration Added",
        "conditions": [{"property": "provider", "operator": "in", "value": ["github", "gitlab"]}],
        "deep_link": "/settings/integrations",
        "ui_component": "tooltip",
        "expected_duration": timedelta(hours=2),
    },
    {
        "key": "invite",
        "title": "Invite a teammate",
        "event_name": "Teammate Invited",
        "count": 2,
        "window": timedelta(days=7),
        "optional": True,
    },
]


def build_path(
    workspace, *, key="getting-started", name="Getting started", steps=STEPS, publish=True
) -> Path:
    """A path whose v1 holds `steps`, published unless told otherwise."""
    path = services.path_create(workspace=workspace, key=key, name=name)
    draft = path.versions.get()
    for step in steps:
        services.step_create(path_version=draft, **step)
    if publish:
        services.path_version_publish(path_version=draft)
    return path


@pytest.fixture
def acme(tenant):
    return tenant[0]


@pytest.fixture
def globex(other_tenant):
    return other_tenant[0]
