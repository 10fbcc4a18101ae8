"""Refuse oversized request bodies before Django reads (and spools) them."""

import orjson
from django.conf import settings


class BodyLimitMiddleware:
    def __init__(self, app):
        self.app = app
        # The largest body any endpoint accepts: a gzip batch gets room for its overhead.
        self.max_bytes = getattr(settings, "MAX_REQUEST_BODY_BYTES", 4 * settings.INGEST_MAX_BATCH_BYTES)

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http":
            for name, value in scope.get("headers", ()):
                if name == b"content-length" and value.isdigit() and int(value) > self.max_bytes:
                    body = orjson.dumps({"detail": f"Request body is larger than {self.max_bytes} bytes."})
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 413,
                            "headers": [(b"content-type", b"application/json")],
                        }
                    )
                    await send({"type": "http.response.body", "body": body})
                    return
        await self.app(scope, receive, send)
