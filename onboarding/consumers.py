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

from onboarding.ingestion import debugger as live
from onboarding.progress.push import progress_group
from onboarding.progress.selectors import enrollment_get_for_user, enrollment_state
from tenancy import selectors, tokens
from tenancy.models import ApiKey

UNAUTHORIZED = 4401


# A revocation closes the key's sockets at once (a broadcast after it commits); this re-check
# closes one that missed the broadcast (the channel layer's Redis was briefly away).
KEY_RECHECK_SECONDS = 30


@database_sync_to_async
def _server_key(key: str) -> ApiKey | None:
    api_key = selectors.api_key_get_by_key(key=key)
    if api_key is None or not api_key.is_active or not api_key.has_scope(ApiKey.Scope.SERVER):
        return None
    return api_key


@database_sync_to_async
def _key_is_active(workspace_id: int, api_key_id: int) -> bool:
    return selectors.api_key_is_active(workspace_id=workspace_id, api_key_id=api_key_id)


class EventDebuggerConsumer(AsyncJsonWebsocketConsumer):
    """/ws/v1/debugger/?key=<secret key>: open while the key is; closed with 4401 when it is
    revoked."""

    groups_joined: tuple[str, ...] = ()
    workspace_id: int | None = None
    recheck: asyncio.Task | None = None

    async def connect(self):
        query = parse_qs(self.scope.get("query_string", b"").decode())
        api_key = await _server_key((query.get("key") or [""])[0])
        if api_key is None:
            await self.accept()
            await self.close(code=UNAUTHORIZED)  # an unknown, revoked or write-only key
            return
        self.workspace_id = api_key.workspace_id
        self.groups_joined = (live.debugger_group(api_key.workspace_id), live.api_key_group(api_key.pk))
        for group in self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        await sync_to_async(live.listener_joined)(api_key.workspace_id)
        await self.accept()
        await self.send_json({"type": "hello", "workspace": api_key.workspace_id})
        self.recheck = asyncio.ensure_future(self._close_once_revoked(api_key.pk))

    async def _close_once_revoked(self, api_key_id: int) -> None:
        while True:
            await asyncio.sleep(KEY_RECHECK_SECONDS)
            if not await _key_is_active(self.workspace_id, api_key_id):
                await self.api_key_revoked({})
                return

    async def disconnect(self, code):
        if self.recheck is not None:
            self.recheck.cancel()
        await self._leave_groups()
        if self.workspace_id is not None:
            await sync_to_async(live.listener_left)(self.workspace_id)
            self.workspace_id = None

    async def _leave_groups(self) -> None:
        groups, self.groups_joined = self.groups_joined, ()
        for group in groups:
            await self.channel_layer.group_discard(group, self.channel_name)

    async def events_stored(self, message):
        await self.send_json(message)

    async def api_key_revoked(self, message):
        """The key was revoked: not one more frame, whenever the client notices the close."""
        await self._leave_groups()
        await self.close(code=UNAUTHORIZED)


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
