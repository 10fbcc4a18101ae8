"""Segment's own Python SDK, pointed at our server, works unchanged."""

import pytest
from segment.analytics.client import Client
from segment.analytics.request import APIError

from onboarding.models import Contact, Event
from tenancy.models import EndUser


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("compress", [False, True])
def test_analytics_python_sdk_sends_every_call_type(live_server, tenant, compress):
    workspace, write_key, _ = tenant
    errors = []
    client = Client(
        write_key,
        host=live_server.url,
        gzip=compress,
        on_error=lambda error, batch: errors.append(error),
        max_retries=0,
    )

    client.page(anonymous_id="device-1", name="Pricing", properties={"path": "/pricing"})
    client.identify("u-1", {"email": "grace@example.com", "persona": "admin"}, anonymous_id="device-1")
    client.track("u-1", "Project Created", {"template": "blank"})
    client.screen("u-1", name="Settings")
    client.group("u-1", "g-1", {"name": "Hopper Inc", "plan": "team"})
    client.alias(previous_id="u-1", user_id="u-2")
    client.shutdown()  # flushes the queue through the SDK's own consumer thread

    assert errors == []
    assert sorted(Event.objects.filter(workspace=workspace).values_list("type", flat=True)) == [
        "alias",
        "group",
        "identify",
        "page",
        "screen",
        "track",
    ]
    end_user = EndUser.objects.get(workspace=workspace)
    assert (end_user.external_id, end_user.persona, end_user.group_id) == ("u-2", "admin", "g-1")
    assert Contact.objects.get(end_user=end_user).email == "grace@example.com"
    track = Event.objects.get(workspace=workspace, type="track")
    assert track.context["library"]["name"] == "analytics-python"
    assert track.sent_at is not None


@pytest.mark.django_db(transaction=True)
def test_analytics_python_sdk_reports_a_revoked_key(live_server, tenant):
    from tenancy import services

    workspace, write_key, _ = tenant
    services.api_key_revoke(api_key=workspace.api_keys.get(kind="write"))
    client = Client(write_key, host=live_server.url, sync_mode=True, max_retries=0)

    with pytest.raises(APIError) as raised:
        client.track("u-1", "Nope")

    assert (raised.value.status, raised.value.code, raised.value.message) == (
        401,
        "authentication_failed",
        "This API key was revoked.",
    )
    assert Event.objects.count() == 0
