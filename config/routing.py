from django.urls import path

from onboarding.consumers import EventDebuggerConsumer

websocket_urlpatterns = [
    path("ws/v1/debugger/", EventDebuggerConsumer.as_asgi()),
]
