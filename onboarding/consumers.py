"""Websocket: /ws/v1/debugger/?key=<secret key> streams a workspace's events as they are stored."""

from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from onboarding import selectors
from onboarding.live import debugger_group
from onboarding.models import ApiKey


@database_sync_to_async
def _workspace_for_key(key: str) -> int | None:
    api_key = selectors.api_key_get_by_key(key=key)
    if api_key is None or not api_key.is_active or not api_key.has_scope(ApiKey.Scope.SERVER):
        return None
    return api_key.workspace_id


class EventDebuggerConsumer(AsyncJsonWebsocketConsumer):
    group_name: str | None = None

    async def connect(self):
        query = parse_qs(self.scope.get("query_string", b"").decode())
        workspace_id = await _workspace_for_key((query.get("key") or [""])[0])
        if workspace_id is None:
            await self.close(code=4401)  # an unknown, revoked or write-only key
            return
        self.group_name = debugger_group(workspace_id)
        await self.channel_layer.group_add(self.group_name, self.channel_name)
        await self.accept()
        await self.send_json({"type": "hello", "workspace": workspace_id})

    async def disconnect(self, code):
        if self.group_name:
            await self.channel_layer.group_discard(self.group_name, self.channel_name)

    async def events_stored(self, message):
        await self.send_json(message)
