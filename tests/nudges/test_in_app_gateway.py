"""The in-app gateway: nothing leaves the system; the user's progress socket gets a "nudge" frame
with the inbox item, and no other user's socket does."""

import logging

import pytest
from asgiref.sync import sync_to_async
from django.db import connection, transaction

from guardrails.models import WorkspacePolicy
from nudges.delivery import tracking
from nudges.delivery.failover import NoProvider, deliver
from nudges.gateways import in_app
from nudges.gateways.base import Message, Recipient, Rejected
from nudges.inbox import inbox_item
from nudges.models import Nudge
from tenancy import tokens
from tests.factories import CANARY_EMAIL, CANARY_NAME, EndUserFactory, WorkspaceFactory
from tests.nudges.factories import ChannelProviderFactory, InAppNudgeFactory
from tests.onboarding import websockets


def _message(nudge: Nudge) -> Message:
    return Message(
        nudge_id=nudge.pk,
        workspace_id=nudge.workspace_id,
        idempotency_key=nudge.idempotency_key,
        channel="in_app",
        subject="Create your first project",
        body="Two minutes, and your dashboard fills up.",
        cta_text="Create it",
        cta_url="http://127.0.0.1:8000/n/c/signed-token",
        ui_component="tooltip",
    )


def _recipient(nudge: Nudge) -> Recipient:
    # Contact data a gateway may be handed: the in-app gateway neither needs nor logs it.
    return Recipient(
        end_user_id=nudge.end_user_id,
        external_id=nudge.end_user.external_id,
        email=CANARY_EMAIL,
        name=CANARY_NAME,
    )


def _comparable(item: dict) -> dict:
    """The item with its click link replaced by the nudge it names (tokens carry a timestamp)."""
    url = item["cta_url"]
    assert url.startswith("http://127.0.0.1:8000/n/c/")
    token = url.rsplit("/", 1)[1]
    return {**item, "cta_url": ("click link of", tracking.nudge_id_from(token, salt=tracking.CLICK_SALT))}


def _queued_nudge(workspace) -> Nudge:
    end_user = EndUserFactory(workspace=workspace)
    return InAppNudgeFactory(
        trigger__workspace=workspace,
        end_user=end_user,
        status="queued",
        sent_at=None,
        delivered_at=None,
        subject="Create your first project",
        body="Two minutes, and your dashboard fills up.",
        cta_text="Create it",
        ui_component="tooltip",
    )


def _provider(workspace):
    return ChannelProviderFactory(workspace=workspace, channel="in_app", provider="in_app")


# --- Without a socket ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_send_returns_the_in_app_message_id_and_pushes_after_commit(
    monkeypatch, django_capture_on_commit_callbacks
):
    workspace = WorkspaceFactory()
    nudge = _queued_nudge(workspace)
    pushed = []
    monkeypatch.setattr(in_app, "push_frame", lambda **kwargs: pushed.append(kwargs))

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        result = in_app.gateway.send(
            provider=_provider(workspace), message=_message(nudge), recipient=_recipient(nudge)
        )
        assert pushed == []  # not before the commit

    assert result.provider_message_id == f"in_app:{nudge.pk}"
    assert len(callbacks) == 1
    nudge.refresh_from_db()
    [push] = pushed
    assert push["end_user_id"] == nudge.end_user_id
    assert _comparable(push["nudge"]) == _comparable(inbox_item(nudge, status="sent"))


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_send_pushes_nothing(monkeypatch):
    workspace = WorkspaceFactory()
    nudge = _queued_nudge(workspace)
    provider = _provider(workspace)
    pushed = []
    monkeypatch.setattr(in_app, "push_frame", lambda **kwargs: pushed.append(kwargs))

    with pytest.raises(RuntimeError), transaction.atomic():
        in_app.gateway.send(provider=provider, message=_message(nudge), recipient=_recipient(nudge))
        raise RuntimeError("the pipeline failed after the send")

    assert pushed == []


@pytest.mark.django_db
def test_a_channel_layer_failure_is_logged_and_the_send_still_succeeds(monkeypatch, caplog):
    def broken():
        raise ConnectionError("redis is down")

    monkeypatch.setattr(in_app, "get_channel_layer", broken)

    with caplog.at_level(logging.WARNING, logger="nudges.gateways.in_app"):
        in_app.push_frame(end_user_id=1, nudge={"id": 7})

    [record] = caplog.records
    assert (record.getMessage(), record.nudge_id) == ("nudges.in_app.push_failed", 7)


@pytest.mark.django_db
def test_a_nudge_that_no_longer_exists_is_rejected():
    workspace = WorkspaceFactory()
    nudge = _queued_nudge(workspace)
    message, recipient = _message(nudge), _recipient(nudge)
    Nudge.objects.filter(pk=nudge.pk).delete()

    with pytest.raises(Rejected):
        in_app.gateway.send(provider=_provider(workspace), message=message, recipient=recipient)


# --- Through the progress websocket ----------------------------------------------------------------


def _closing(function):
    def run(*args, **kwargs):
        try:
            return function(*args, **kwargs)
        finally:
            connection.close()

    return sync_to_async(run)


@_closing
def _setup():
    workspace = WorkspaceFactory()
    nudge = _queued_nudge(workspace)
    other = EndUserFactory(workspace=workspace)
    return (
        workspace,
        nudge,
        tokens.token_issue(end_user=nudge.end_user)[0],
        tokens.token_issue(end_user=other)[0],
    )


@_closing
def _send(workspace, nudge):
    result = in_app.gateway.send(
        provider=_provider(workspace), message=_message(nudge), recipient=_recipient(nudge)
    )
    nudge.refresh_from_db()
    return result, inbox_item(nudge, status="sent")


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_the_users_progress_socket_gets_the_nudge_frame_and_no_one_elses_does():
    workspace, nudge, token, other_token = await _setup()
    mine, connected, _ = await websockets.connect(websockets.ONBOARDING, token)
    assert connected
    theirs, connected, _ = await websockets.connect(websockets.ONBOARDING, other_token)
    assert connected
    assert (await mine.receive_json_from(timeout=3))["type"] == "onboarding.state"
    assert (await theirs.receive_json_from(timeout=3))["type"] == "onboarding.state"

    result, expected = await _send(workspace, nudge)

    frame = await mine.receive_json_from(timeout=3)
    assert frame["type"] == "nudge"
    assert _comparable(frame["nudge"]) == _comparable(expected)
    assert frame["nudge"]["id"] == nudge.pk
    assert (frame["nudge"]["subject"], frame["nudge"]["ui_component"]) == (
        "Create your first project",
        "tooltip",
    )
    assert result.provider_message_id == f"in_app:{nudge.pk}"
    assert await theirs.receive_nothing(timeout=0.3)
    await mine.disconnect()
    await theirs.disconnect()


# --- Built in: no provider row needed --------------------------------------------------------------


@pytest.mark.django_db
def test_in_app_is_delivered_without_a_provider_row(monkeypatch):
    workspace = WorkspaceFactory()
    WorkspacePolicy.objects.create(workspace=workspace, data_region="eu")
    nudge = _queued_nudge(workspace)
    monkeypatch.setattr(in_app, "push_frame", lambda **kwargs: None)

    delivery = deliver(
        workspace=workspace, channel="in_app", message=_message(nudge), recipient=_recipient(nudge)
    )

    assert delivery.result.provider_message_id == f"in_app:{nudge.pk}"
    assert (delivery.provider.provider, delivery.provider.channel, delivery.provider.region) == (
        "in_app",
        "in_app",
        "eu",
    )
    assert [attempt["outcome"] for attempt in delivery.attempts] == ["sent"]


@pytest.mark.django_db
def test_an_in_app_provider_switched_off_in_the_admin_stays_off(monkeypatch):
    workspace = WorkspaceFactory()
    ChannelProviderFactory(workspace=workspace, channel="in_app", provider="in_app", is_active=False)
    nudge = _queued_nudge(workspace)

    with pytest.raises(NoProvider) as no_provider:
        deliver(workspace=workspace, channel="in_app", message=_message(nudge), recipient=_recipient(nudge))

    assert no_provider.value.reason == "no in_app provider is configured for this workspace"
