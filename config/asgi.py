"""HTTP (Django, core.http) and websockets (Channels) on one ASGI application."""

import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django.setup(set_prefix=False)

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402

from config.periodic import lifespan  # noqa: E402
from config.routing import websocket_urlpatterns  # noqa: E402
from core import logging as config_logging  # noqa: E402
from core.http import ThreadPoolASGIHandler  # noqa: E402
from core.middleware.body_limit import BodyLimitMiddleware  # noqa: E402

config_logging.redact_server_logs()

application = ProtocolTypeRouter(
    {
        "http": BodyLimitMiddleware(ThreadPoolASGIHandler(threads=settings.HTTP_THREADS)),
        # Websockets authenticate with a key or token in the URL, never a cookie, so a foreign
        # page cannot ride a session: no Origin check is needed, and CLI clients send none.
        "websocket": URLRouter(websocket_urlpatterns),
        # The periodic jobs of the embedded default (config.periodic); served only with the
        # lifespan on (make run), never by config.serve.
        "lifespan": lifespan,
    }
)
