"""Refuse oversized request bodies while they arrive, before Django reads (and spools) them.

A declared Content-Length over the limit is answered 413 before any of the body is read. A body
without one (Transfer-Encoding: chunked) is counted as its chunks arrive: the first chunk that
takes it over the limit ends the reading, and the answer is the same 413, whoever the client is
(authentication comes later, in the view). The application then sees the client as gone.
"""

import orjson
from django.conf import settings


def max_request_body_bytes() -> int:
    """The largest body any endpoint accepts: a gzip batch gets room for its overhead."""
    return getattr(settings, "MAX_REQUEST_BODY_BYTES", 4 * settings.INGEST_MAX_BATCH_BYTES)


class BodyLimitMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        max_bytes = max_request_body_bytes()
        for name, value in scope.get("headers", ()):
            if name == b"content-length" and value.isdigit() and int(value) > max_bytes:
                await _refuse(send, max_bytes)
                return
        limited = _LimitedReceive(receive, max_bytes)
        await self.app(scope, limited, send)
        if limited.exceeded:
            await _refuse(send, max_bytes)


class _LimitedReceive:
    """`receive` that counts body bytes; over the limit it reports a disconnect, so that the
    application stops reading and answers nothing, and the middleware answers 413."""

    def __init__(self, receive, max_bytes: int):
        self.receive = receive
        self.max_bytes = max_bytes
        self.received = 0
        self.exceeded = False

    async def __call__(self):
        if self.exceeded:
            return {"type": "http.disconnect"}
        message = await self.receive()
        if message["type"] == "http.request":
            self.received += len(message.get("body", b""))
            if self.received > self.max_bytes:
                self.exceeded = True
                return {"type": "http.disconnect"}
        return message


async def _refuse(send, max_bytes: int) -> None:
    body = orjson.dumps({"detail": f"Request body is larger than {max_bytes} bytes."})
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            # The rest of the body is not read: the connection cannot carry another request.
            "headers": [(b"content-type", b"application/json"), (b"connection", b"close")],
        }
    )
    await send({"type": "http.response.body", "body": body})
