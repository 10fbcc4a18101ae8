"""The analytics read API, mounted under /api/v1/analytics/ by config.urls."""

from django.urls import path

from analytics.api import MetricApi, PathFunnelApi
from analytics.dashboard_api import ActivationApi, OpsApi, StuckApi
from analytics.events.api import CohortRetentionApi, EventFunnelApi
from analytics.nudges.api import NudgeAnalyticsApi

urlpatterns: list = [
    path("paths/<slug:path_key>/funnel", PathFunnelApi.as_view(), name="analytics-path-funnel"),
    path("metrics", MetricApi.as_view(), name="analytics-metrics"),
    path("activation", ActivationApi.as_view(), name="analytics-activation"),
    path("stuck", StuckApi.as_view(), name="analytics-stuck"),
    path("ops", OpsApi.as_view(), name="analytics-ops"),
    path("funnels/events", EventFunnelApi.as_view(), name="analytics-event-funnel"),
    path("cohorts", CohortRetentionApi.as_view(), name="analytics-cohorts"),
    path("nudges", NudgeAnalyticsApi.as_view(), name="analytics-nudges"),
]
