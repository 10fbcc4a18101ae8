from django.urls import path

from onboarding.consumers import EventDebuggerConsumer, OnboardingProgressConsumer

websocket_urlpatterns = [
    path("ws/v1/debugger/", EventDebuggerConsumer.as_asgi()),
    path("ws/v1/onboarding/", OnboardingProgressConsumer.as_asgi()),
]
