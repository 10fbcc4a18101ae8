"""Fixtures for the paths tests: a TOTP-verified admin client and a small onboarding path."""

from datetime import timedelta

import pytest
from django.test import Client
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from paths import services
from paths.models import Path


def verified_client(user) -> Client:
    """A client logged in as `user` whose session is verified by a confirmed TOTP device."""
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    client = Client()
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    return client


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
