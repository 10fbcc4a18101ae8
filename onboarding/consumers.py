"""Websockets: /ws/v1/debugger/?key=<secret key> streams a workspace's events as they are stored;
/ws/v1/onboarding/?token=<end-user token> streams one end user's onboarding state.

A refused credential is answered by accepting and closing at once with code 4401: closing before
the handshake would reach a browser only as an anonymous 1006.
"""

import asyncio
from urllib.parse import parse_qs

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.utils import timezone

from onboarding import live, selectors, tokens
from onboarding.enrollments import enrollment_get_for_user, enrollment_state
from onboarding.live_progress import progress_group
from onboarding.models import ApiKey

UNAUTHORIZED = 4401


@database_sync_to_async
def _workspace_for_key(key: str) -> int | None:
    api_key = selectors.api_key_get_by_key(key=key)
    if api_key is None or not api_key.is_active or not api_key.has_scope(ApiKey.Scope.SERVER):
        return None
    return api_key.workspace_id


class EventDebuggerConsumer(AsyncJsonWebsocketConsumer):
    group_name: str | None = None
    workspace_id: int | None = None

    async def connect(self):
        query = parse_qs(self.scope.get("query_string", b"").decode())
        workspace_id = await _workspace_for_key((query.get("key") or [""])[0])
        if workspace_id is None:
            await self.accept()
            await self.close(code=UNAUTHORIZED)  # an unknown, revoked or write-only key
            return
        self.workspace_id = workspace_id
        self.group_name = live.debugger_group(workspace_id)
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await sync_to_async(live.listener_joined)(workspace_id)
        await self.accept()
        await self.send_json({"type": "hello", "workspace": workspace_id})

    async def disconnect(self, code):
        if self.group_name:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)
        if self.workspace_id is not None:
            await sync_to_async(live.listener_left)(self.workspace_id)

    async def events_stored(self, message):
        await self.send_json(message)


@database_sync_to_async
def _state_for_token(token: tokens.EndUserToken) -> dict | None:
    workspace = tokens.token_workspace(token)
    enrollment = enrollment_get_for_user(workspace=workspace, user_id=token.external_id)
    if enrollment is None or enrollment.end_user_id != token.end_user_id:
        return None
    return enrollment_state(enrollment=enrollment)


class OnboardingProgressConsumer(AsyncJsonWebsocketConsumer):
    """/ws/v1/onboarding/?token=<end-user token>: the user's onboarding state on connect, then a
    frame on every change. The token names the one user whose group is joined."""

    group_name: str | None = None
    expiry: asyncio.TimerHandle | None = None
    # The last state sent: a frame queued before the state read on connect is not sent after it.
    enrollment_id: int | None = None
    revision: int = 0

    async def connect(self):
        query = parse_qs(self.scope.get("query_string", b"").decode())
        try:
            token = tokens.token_verify((query.get("token") or [""])[0])
        except tokens.TokenInvalid:
            await self.accept()
            await self.close(code=UNAUTHORIZED)  # missing, tampered or expired
            return
        # Join before reading, so no change can fall between the state sent and the first frame;
        # frames older than that state are dropped in onboarding_state.
        self.group_name = progress_group(token.end_user_id)
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        state = await _state_for_token(token)
        await self.accept()
        # No enrollment yet (identify has not run): null, and the first frame follows enrolment.
        await self._send_state(state)
        # The token's lifetime bounds the socket's: the app fetches a new token and reconnects.
        remaining = (token.expires_at - timezone.now()).total_seconds()
        self.expiry = asyncio.get_running_loop().call_later(
            max(remaining, 0), lambda: asyncio.ensure_future(self.close(code=UNAUTHORIZED))
        )

    async def disconnect(self, code):
        if self.expiry is not None:
            self.expiry.cancel()
        if self.group_name:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def onboarding_state(self, message):
        await self._send_state(message["state"])

    async def nudge_inbox(self, message):
        """An in-app nudge just sent (nudges.gateways.in_app): the inbox item, as the API shows it."""
        await self.send_json({"type": "nudge", "nudge": message["nudge"]})

    async def _send_state(self, state: dict | None) -> None:
        if state is not None:
            if state["revision"] <= self.revision and state.get("enrollment_id") == self.enrollment_id:
                return
            self.revision, self.enrollment_id = state["revision"], state.get("enrollment_id")
        await self.send_json({"type": "onboarding.state", "state": state})
