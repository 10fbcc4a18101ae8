"""Helpers of the policy tests: a user in a time zone, a check with defaults, fresh cap stores."""

from datetime import UTC, datetime

import pytest

from guardrails.models import WorkspacePolicy
from guardrails.policy import caps
from guardrails.policy import engine as policy
from tests.factories import EndUserFactory


@pytest.fixture(autouse=True)
def _caps_try_redis_again():
    """A test that broke Redis on purpose must not leave the next one on the database path."""
    caps._redis_down_until = 0.0
    yield
    caps._redis_down_until = 0.0
    caps._clients.clear()


@pytest.fixture
def database_caps(settings):
    """The cap counted by the database (no Redis), whatever the environment says."""
    settings.REDIS_URL = ""


@pytest.fixture
def redis_caps(settings, redis_url):
    settings.REDIS_URL = redis_url


def user_in(zone: str = "Europe/Paris", **fields):
    return EndUserFactory(timezone=zone, **fields)


def workspace_policy(end_user, **fields) -> WorkspacePolicy:
    policy_row, _ = WorkspacePolicy.objects.update_or_create(workspace=end_user.workspace, defaults=fields)
    return policy_row


def send(
    end_user, channel: str = "email", purpose: str = "onboarding", now: datetime | None = None, **context
):
    return policy.check(
        policy.NUDGE_SEND, end_user, {"channel": channel, "purpose": purpose, "now": now, **context}
    )


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)
