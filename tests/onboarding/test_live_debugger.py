"""The live event debugger websocket, and ingestion with the channel layer's Redis down."""

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from onboarding import consumers
from onboarding.ingestion import debugger as live
from onboarding.models import Event
from tenancy import services
from tests.conftest import basic_auth
from tests.onboarding import websockets


def _post_batch(write_key: str, batch: list[dict]) -> int:
    try:
        response = APIClient().post(
            "/v1/batch", {"batch": batch}, format="json", HTTP_AUTHORIZATION=basic_auth(write_key)
        )
        return response.status_code
    finally:
        connection.close()  # the test client keeps it open in this worker thread otherwise


async def _connect(credential: str):
    return await websockets.connect(websockets.DEBUGGER, credential)


async def _close_code_for(credential: str) -> int | None:
    return await websockets.close_code_for(websockets.DEBUGGER, credential)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_debugger_streams_each_workspace_its_own_new_events(tenant, other_tenant):
    workspace, write_key, secret_key = tenant
    _, _, other_secret_key = other_tenant
    mine, connected, _ = await _connect(secret_key)
    assert connected
    assert await mine.receive_json_from(timeout=3) == {"type": "hello", "workspace": workspace.pk}
    theirs, connected, _ = await _connect(other_secret_key)
    assert connected
    await theirs.receive_json_from(timeout=3)

    status = await sync_to_async(_post_batch)(
        write_key,
        [
            {
                "type": "track",
                "userId": "u-1",
                "event": "Project Created",
                "messageId": "m-1",
                "properties": {"template": "blank"},
            },
            {"type": "page", "anonymousId": "a-1", "name": "Docs", "messageId": "m-2"},
        ],
    )
    assert status == 200

    frame = await mine.receive_json_from(timeout=3)
    assert frame["type"] == "events.stored"
    assert frame["count"] == 2
    assert [(event["type"], event["name"], event["messageId"]) for event in frame["events"]] == [
        ("track", "Project Created", "m-1"),
        ("page", "Docs", "m-2"),
    ]
    assert frame["events"][0]["properties"] == {"template": "blank"}
    assert await theirs.receive_nothing(timeout=0.5)

    # A retry stores nothing new, so nothing is pushed.
    assert (
        await sync_to_async(_post_batch)(
            write_key, [{"type": "track", "userId": "u-1", "event": "Project Created", "messageId": "m-1"}]
        )
        == 200
    )
    assert await mine.receive_nothing(timeout=0.5)
    await mine.disconnect()
    await theirs.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_debugger_refuses_write_keys_unknown_and_revoked_keys(tenant):
    workspace, write_key, secret_key = tenant
    for key in (write_key, "sk_unknown", ""):
        assert await _close_code_for(key) == 4401

    api_key = await database_sync_to_async(workspace.api_keys.get)(kind="secret")
    await database_sync_to_async(services.api_key_revoke)(api_key=api_key)
    assert await _close_code_for(secret_key) == 4401


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_an_open_debugger_closes_when_its_key_is_revoked(tenant):
    workspace, write_key, secret_key = tenant
    debugger, connected, _ = await _connect(secret_key)
    assert connected
    await debugger.receive_json_from(timeout=3)  # hello
    other = await database_sync_to_async(services.api_key_create)(
        workspace=workspace, name="Other server", kind="secret"
    )
    still_open, connected, _ = await _connect(other.key)
    assert connected
    await still_open.receive_json_from(timeout=3)

    api_key = await database_sync_to_async(workspace.api_keys.filter(kind="secret").earliest)("created_at")
    await database_sync_to_async(services.api_key_revoke)(api_key=api_key)

    assert await debugger.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}
    # The key's events stop with it; a socket opened with another key of the workspace streams on.
    status = await sync_to_async(_post_batch)(write_key, [{"type": "track", "userId": "u", "event": "E"}])
    assert status == 200
    assert (await still_open.receive_json_from(timeout=3))["type"] == "events.stored"
    assert await debugger.receive_nothing(timeout=0.5)
    await still_open.disconnect()


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_a_debugger_that_missed_the_revocation_closes_at_its_recheck(tenant, monkeypatch):
    workspace, _, secret_key = tenant
    monkeypatch.setattr(consumers, "KEY_RECHECK_SECONDS", 0.05)
    monkeypatch.setattr(live, "publish_api_key_revoked", lambda **_: None)  # the broadcast is lost
    debugger, connected, _ = await _connect(secret_key)
    assert connected
    await debugger.receive_json_from(timeout=3)
    assert await debugger.receive_nothing(timeout=0.3)  # re-checked, still valid: still open

    api_key = await database_sync_to_async(workspace.api_keys.get)(kind="secret")
    await database_sync_to_async(services.api_key_revoke)(api_key=api_key)

    assert await debugger.receive_output(timeout=3) == {"type": "websocket.close", "code": 4401}


@pytest.mark.django_db(transaction=True)
def test_events_are_accepted_while_the_channel_layer_redis_is_down(tenant):
    workspace, write_key, _ = tenant
    unreachable = {
        "default": {
            "BACKEND": "channels_redis.pubsub.RedisPubSubChannelLayer",
            "CONFIG": {"hosts": ["redis://127.0.0.1:1/0"]},
        }
    }
    with override_settings(CHANNEL_LAYERS=unreachable):
        status = _post_batch(write_key, [{"type": "track", "userId": "u", "event": "Redis Down"}])

    assert status == 200
    assert Event.objects.filter(workspace=workspace, name="Redis Down").count() == 1


def test_events_are_published_only_while_a_debugger_listens(monkeypatch):
    from datetime import UTC, datetime

    sent = []

    class Layer:
        async def group_send(self, group, message):
            sent.append((group, message["count"]))

    monkeypatch.setattr(live, "get_channel_layer", Layer)
    events = [
        {
            "type": "track",
            "name": "E",
            "message_id": "m",
            "user_id": "u",
            "anonymous_id": "",
            "timestamp": datetime(2026, 1, 1, tzinfo=UTC),
            "properties": {},
        }
    ]

    live.publish_events(workspace_id=987, events=events)
    assert sent == []

    live.listener_joined(987)
    live._listening.clear()
    live.publish_events(workspace_id=987, events=events)
    assert sent == [("debugger.987", 1)]

    live.listener_left(987)
    live._listening.clear()
    live.publish_events(workspace_id=987, events=events)
    assert sent == [("debugger.987", 1)]
