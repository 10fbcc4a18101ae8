"""HTTP (Django) and websockets (Channels) on one ASGI application."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from config.body_limit import BodyLimitMiddleware  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        "http": BodyLimitMiddleware(django_asgi_app),
        # Websockets authenticate with a key or token in the URL, never a cookie, so a foreign
        # page cannot ride a session: no Origin check is needed, and CLI clients send none.
        "websocket": URLRouter(websocket_urlpatterns),
    }
)
