from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView

from analytics.signals import views as signals_views
from analytics.signals.api import SignalCreateApi
from config import health
from core import metrics
from guardrails.gdpr.api import DataExportApi, EndUserEraseApi
from guardrails.preferences import views as guardrails_views
from guardrails.preferences.api import PreferencesApi
from onboarding.ingestion.api import SegmentBatchApi, SegmentCallApi
from onboarding.progress.api import (
    AnswersSaveApi,
    EndUserTokenCreateApi,
    EnrollmentCompleteApi,
    EnrollmentDetailApi,
    StepBackApi,
    StepCompleteApi,
    StepSkipApi,
)

CALL_TYPES = ("identify", "track", "page", "screen", "group", "alias")
# Segment's browser and mobile SDKs use one-letter paths: /v1/t, /v1/i ... and /v1/b for batches.
segment_calls = [
    path(f"v1/{path_name}", SegmentCallApi.as_view(call_type=call_type), name=f"segment-{path_name}")
    for call_type in CALL_TYPES
    for path_name in (call_type, call_type[0])
]

ONBOARDING = "api/v1/users/<str:user_id>/onboarding"
progress_api = [
    path("api/v1/users/<str:user_id>/token", EndUserTokenCreateApi.as_view(), name="end-user-token"),
    path(ONBOARDING, EnrollmentDetailApi.as_view(), name="enrollment-detail"),
    path(f"{ONBOARDING}/steps/<str:step_key>/complete", StepCompleteApi.as_view(), name="step-complete"),
    path(f"{ONBOARDING}/steps/<str:step_key>/skip", StepSkipApi.as_view(), name="step-skip"),
    path(f"{ONBOARDING}/back", StepBackApi.as_view(), name="step-back"),
    path(f"{ONBOARDING}/answers", AnswersSaveApi.as_view(), name="answers-save"),
    path(f"{ONBOARDING}/complete", EnrollmentCompleteApi.as_view(), name="enrollment-complete"),
    path("api/v1/users/<str:user_id>/preferences", PreferencesApi.as_view(), name="preferences"),
    path("api/v1/users/<str:user_id>/data-export", DataExportApi.as_view(), name="data-export"),
    path("api/v1/users/<str:user_id>", EndUserEraseApi.as_view(), name="end-user-erase"),
]

SIGNALS_ADMIN = "admin/analytics/signals/"
signals_admin = [
    path(SIGNALS_ADMIN, admin.site.admin_view(signals_views.signal_reports), name="signals-reports"),
    path(
        f"{SIGNALS_ADMIN}<int:workspace_id>/<str:label>/<str:name>",
        admin.site.admin_view(signals_views.signal_report_file),
        name="signals-report-file",
    ),
]

urlpatterns = [
    *signals_admin,
    path("admin/", admin.site.urls),
    *segment_calls,
    path("v1/batch", SegmentBatchApi.as_view(), name="segment-batch"),
    path("v1/b", SegmentBatchApi.as_view(), name="segment-b"),
    path("v1/import", SegmentBatchApi.as_view(), name="segment-import"),
    *progress_api,
    path("api/v1/analytics/", include("analytics.urls")),
    path("api/v1/signals", SignalCreateApi.as_view(), name="signals"),
    path("api/schema", SpectacularAPIView.as_view(), name="api-schema"),
    path("healthz", health.healthz, name="healthz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("u/<str:token>", guardrails_views.unsubscribe, name="unsubscribe"),
    path("", include("nudges.urls")),
    path("", include("experiments.urls")),
]
