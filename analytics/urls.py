"""The analytics read API, mounted under /api/v1/analytics/ by config.urls."""

from django.urls import path

from analytics.nudges.api import NudgeAnalyticsApi

urlpatterns: list = [
    path("nudges", NudgeAnalyticsApi.as_view(), name="analytics-nudges"),
]
