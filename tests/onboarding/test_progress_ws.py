"""The progress websocket: token authentication, the state on connect, a frame on every change,
and never another user's frames."""

import asyncio
import json
import time
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import HttpCommunicator
from django.db import connection
from rest_framework.test import APIClient

from config.asgi import application
from tenancy import tokens
from tests.conftest import basic_auth
from tests.onboarding import websockets
from tests.onboarding.progress_setup import enrol, published_path, track

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.asyncio]


def _closing(function):
    """Run in a worker thread and close the DB connection it opened there, so none leaks."""

    def run(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        finally:
            connection.close()

    return sync_to_async(run)


@_closing
def _setup(tenant, *user_ids: str) -> dict[str, tuple[str, dict]]:
    """Enrol each user; user id -> (token, enrollment)."""
    workspace, write_key, _ = tenant
    published_path(workspace)
    enrolled = {}
    for user_id in user_ids:
        enrollment = enrol(write_key, user_id, workspace)
        enrolled[user_id] = (tokens.token_issue(end_user=enrollment.end_user)[0], enrollment)
    return enrolled


@_closing
def _track(write_key: str, user_id: str, event: str) -> int:
    return track(write_key, user_id, event)


@_closing
def _complete(secret_key: str, user_id: str, step_key: str) -> int:
    response = APIClient().post(
        f"/api/v1/users/{user_id}/onboarding/steps/{step_key}/complete",
        HTTP_AUTHORIZATION=basic_auth(secret_key),
    )
    return response.status_code


async def _connect(credential: str):
    return await websockets.connect(websockets.ONBOARDING, credential)


async def _close_code_for(credential: str) -> int | None:
    return await websockets.close_code_for(websockets.ONBOARDING, credential)


async def test_the_state_on_connect_then_a_frame_when_a_tracked_event_completes_a_step(tenant):
    _, write_key, _ = tenant
    enrolled = await _setup(tenant, "u-1", "u-2")
    token, enrollment = enrolled["u-1"]
    mine, connected, _ = await _connect(token)
    assert connected
    first = await mine.receive_json_from(timeout=3)
    assert first["type"] == "onboarding.state"
    assert first["state"]["user_id"] == "u-1"
    assert first["state"]["current_step"] == "create-project"
    assert first["state"]["revision"] == enrollment.revision
    theirs, connected, _ = await _connect(enrolled["u-2"][0])
    assert connected
    assert (await theirs.receive_json_from(timeout=3))["state"]["user_id"] == "u-2"

    started = time.monotonic()
    assert await _track(write_key, "u-1", "Project Created") == 200

    frame = await mine.receive_json_from(timeout=3)
    assert time.monotonic() - started < 1  # within the same second as the event
    assert frame["type"] == "onboarding.state"
    assert frame["state"]["revision"] == enrollment.revision + 1
    assert frame["state"]["current_step"] == "profile"
    assert {step["key"]: step["status"] for step in frame["state"]["steps"]}["create-project"] == "completed"
    assert await theirs.receive_nothing(timeout=0.5)
    await mine.disconnect()
    await theirs.disconnect()


async def test_api_writes_are_pushed_to_that_user_only(tenant):
    _, _, secret_key = tenant
    enrolled = await _setup(tenant, "u-1", "u-2")
    sockets = {}
    for user_id in ("u-1", "u-2"):
        sockets[user_id], connected, _ = await _connect(enrolled[user_id][0])
        assert connected
        await sockets[user_id].receive_json_from(timeout=3)

    assert await _complete(secret_key, "u-2", "connect") == 200
    frame = await sockets["u-2"].receive_json_from(timeout=3)
    assert frame["state"]["user_id"] == "u-2"
    assert frame["state"]["revision"] == enrolled["u-2"][1].revision + 1
    assert await sockets["u-1"].receive_nothing(timeout=0.5)

    # Two sockets of one user (two devices) both get the frame.
    second_device, connected, _ = await _connect(enrolled["u-1"][0])
    assert connected
    await second_device.receive_json_from(timeout=3)
    assert await _complete(secret_key, "u-1", "connect") == 200
    for communicator in (sockets["u-1"], second_device):
        assert (await communicator.receive_json_from(timeout=3))["state"]["user_id"] == "u-1"
    assert await sockets["u-2"].receive_nothing(timeout=0.5)
    for communicator in (*sockets.values(), second_device):
        await communicator.disconnect()


async def test_invalid_expired_and_missing_tokens_are_closed_with_4401(tenant, monkeypatch):
    _, _, secret_key = tenant
    enrolled = await _setup(tenant, "u-1")
    token = enrolled["u-1"][0]
    for bad in ("", "ut_garbage", token[:-3] + "xyz", secret_key):
        assert await _close_code_for(bad) == 4401, bad

    issued = tokens._now()
    monkeypatch.setattr(tokens, "_now", lambda: issued + 15 * 60 + 1)
    assert await _close_code_for(token) == 4401


async def test_a_user_not_yet_enrolled_gets_null_then_the_enrollment(tenant):
    workspace, write_key, _ = tenant
    await _setup(tenant)
    end_user = await database_sync_to_async(workspace.end_users.create)(external_id="late")
    token, _ = tokens.token_issue(end_user=end_user)
    communicator, connected, _ = await _connect(token)
    assert connected
    assert await communicator.receive_json_from(timeout=3) == {"type": "onboarding.state", "state": None}

    await _closing(enrol)(write_key, "late", workspace)

    frame = await communicator.receive_json_from(timeout=3)
    assert frame["state"]["user_id"] == "late"
    assert frame["state"]["current_step"] == "create-project"
    await communicator.disconnect()


async def test_the_socket_closes_when_its_token_expires(tenant):
    enrolled = await _setup(tenant, "u-1")
    enrollment = enrolled["u-1"][1]
    # Expiry is a whole second, rounded down: 2 s leaves at least 1 s to connect before it.
    short_lived, _ = await database_sync_to_async(tokens.token_issue)(
        end_user=enrollment.end_user, lifetime=timedelta(seconds=2)
    )
    communicator, connected, _ = await _connect(short_lived)
    assert connected
    assert (await communicator.receive_json_from(timeout=3))["type"] == "onboarding.state"

    closed = await communicator.receive_output(timeout=4)

    assert closed == {"type": "websocket.close", "code": 4401}


async def test_through_the_server_a_write_is_answered_without_waiting_for_its_push(tenant, monkeypatch):
    """In the server's request threads the push goes to the event loop: the response is sent
    whatever the channel layer is doing, and the frame follows when the layer sends it."""
    _, _, secret_key = tenant
    enrolled = await _setup(tenant, "u-1")
    socket, connected, _ = await _connect(enrolled["u-1"][0])
    assert connected
    await socket.receive_json_from(timeout=3)  # the state on connect
    layer = get_channel_layer()
    release = asyncio.Event()
    group_send = layer.group_send

    async def held_group_send(group, message):
        await release.wait()
        await group_send(group, message)

    monkeypatch.setattr(layer, "group_send", held_group_send)
    request = HttpCommunicator(
        application,
        "POST",
        "/api/v1/users/u-1/onboarding/steps/create-project/complete",
        headers=[(b"host", b"testserver"), (b"authorization", basic_auth(secret_key).encode())],
    )

    response = await request.get_response(timeout=10)  # would time out were the push awaited

    assert response["status"] == 200, response["body"]
    assert await socket.receive_nothing(timeout=0.2)
    release.set()
    frame = await socket.receive_json_from(timeout=3)
    assert frame["state"]["revision"] == json.loads(response["body"])["revision"]
    assert frame["state"]["steps"][0]["status"] == "completed"
    await socket.disconnect()
