from django.contrib import admin
from django.urls import path
from drf_spectacular.views import SpectacularAPIView

from config import health
from onboarding.api import SegmentBatchApi, SegmentCallApi

segment_calls = [
    path(f"v1/{call_type}", SegmentCallApi.as_view(call_type=call_type), name=f"segment-{call_type}")
    for call_type in ("identify", "track", "page", "screen", "group", "alias")
]

urlpatterns = [
    path("admin/", admin.site.urls),
    *segment_calls,
    path("v1/batch", SegmentBatchApi.as_view(), name="segment-batch"),
    path("v1/import", SegmentBatchApi.as_view(), name="segment-import"),
    path("api/schema", SpectacularAPIView.as_view(), name="api-schema"),
    path("healthz", health.healthz, name="healthz"),
]
