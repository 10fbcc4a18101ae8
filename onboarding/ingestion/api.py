"""Segment-compatible ingestion: /v1/identify, track, page, screen, group, alias and batch."""

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response
from rest_framework.views import APIView

from onboarding import signals
from onboarding.ingestion import guards, segment
from onboarding.ingestion import services as ingestion_services
from onboarding.ingestion.parsers import SegmentJSONParser
from onboarding.progress import selectors as progress_selectors
from tenancy.authentication import ApiKeyAuthentication, HasScope
from tenancy.models import ApiKey

MAX_REPORTED_REJECTIONS = 100
"""A batch's error body names its first rejections and counts the rest: a 345-byte compressed
batch of empty calls must not buy a body of megabytes."""


def _invalid_batch_response(invalid: segment.InvalidBatch) -> Response:
    detail = "Invalid batch: " + "; ".join(f"{error.field}: {error.reason}" for error in invalid.errors) + "."
    return Response(
        {
            "success": False,
            "code": "payload_too_large" if invalid.too_large else "invalid",
            "message": detail,
            "detail": detail,
            "errors": [error.as_dict() for error in invalid.errors],
        },
        status=status.HTTP_413_REQUEST_ENTITY_TOO_LARGE if invalid.too_large else status.HTTP_400_BAD_REQUEST,
    )


def _result_response(result, *, single: bool) -> Response:
    if not result.rejected:
        return Response({"success": True})
    if single:
        rejection = result.rejected[0]
        code = (
            status.HTTP_413_REQUEST_ENTITY_TOO_LARGE if rejection.too_large else status.HTTP_400_BAD_REQUEST
        )
        detail = f"Invalid call: {rejection.errors[0].field}: {rejection.errors[0].reason}"
        return Response(
            {
                "success": False,
                "code": "payload_too_large" if rejection.too_large else "invalid",
                "message": detail,
                "detail": detail,
                "errors": [error.as_dict() for error in rejection.errors],
            },
            status=code,
        )
    detail = (
        f"{len(result.rejected)} of {result.accepted + len(result.rejected)} events were "
        f"rejected; the other {result.accepted} were accepted."
    )
    if len(result.rejected) > MAX_REPORTED_REJECTIONS:
        detail += f" The first {MAX_REPORTED_REJECTIONS} rejections are listed."
    return Response(
        {
            "success": False,
            "code": "partially_rejected",
            "message": detail,
            "detail": detail,
            "accepted": result.accepted,
            "rejected": [rejection.as_dict() for rejection in result.rejected[:MAX_REPORTED_REJECTIONS]],
            "rejected_count": len(result.rejected),
        },
        status=status.HTTP_400_BAD_REQUEST,
    )


class _IngestApi(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasScope]
    parser_classes = [SegmentJSONParser]
    required_scope = ApiKey.Scope.EVENTS_WRITE

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.envelope_check(request)
        # The registered checks (guardrails' per-key rate limit: 429 with Retry-After when over it).
        guards.request_admit(request=request, call_type=getattr(self, "call_type", None))

    def envelope_check(self, request) -> None:
        """Refuse a request whose shape is wrong as a whole, before the rate limiter counts its
        events: a batch too large for any limit must get 413, never a 429 to retry forever."""

    def finalize_response(self, request, response, *args, **kwargs):
        if response.status_code in (status.HTTP_400_BAD_REQUEST, status.HTTP_413_REQUEST_ENTITY_TOO_LARGE):
            signals.ingestion_rejected.send(sender=__name__, request=request, response=response)
        return super().finalize_response(request, response, *args, **kwargs)


class SegmentCallApi(_IngestApi):
    """One call. The path names its type; the body is the call as in Segment's spec."""

    call_type: str = ""
    max_body_bytes = settings.INGEST_MAX_EVENT_BYTES

    @extend_schema(
        request=dict,
        responses={200: OpenApiResponse(description='{"success": true} once stored')},
    )
    def post(self, request):
        result = ingestion_services.events_ingest(
            workspace=request.user.workspace,
            raw_events=[request.data],
            received_at=timezone.now(),
            call_type=self.call_type,
        )
        response = _result_response(result, single=True)
        user_id = request.data.get("userId")
        if self.call_type == "identify" and not result.rejected and user_id not in (None, ""):
            # identify enrols a new user: the app gets the path to show without another call.
            enrollment = progress_selectors.enrollment_get_for_user(
                workspace=request.user.workspace, user_id=str(user_id)
            )
            if enrollment is not None:
                response.data["enrollment"] = progress_selectors.enrollment_state(enrollment=enrollment)
        return response


class SegmentBatchApi(_IngestApi):
    """Many calls of any type, with optional batch-wide context and sentAt."""

    max_body_bytes = settings.INGEST_MAX_BATCH_BYTES
    envelope: segment.Envelope

    def envelope_check(self, request) -> None:
        self.envelope = segment.validate_envelope(request.data, max_events=settings.INGEST_MAX_BATCH_EVENTS)

    def handle_exception(self, exc):
        if isinstance(exc, segment.InvalidBatch):
            return _invalid_batch_response(exc)
        return super().handle_exception(exc)

    @extend_schema(
        request=dict,
        responses={
            200: OpenApiResponse(description='{"success": true} once every event is stored'),
            400: OpenApiResponse(
                description="Some events rejected: index, field and reason each (the first 100, "
                "and `rejected_count`); or the batch's own context or sentAt is invalid"
            ),
            413: OpenApiResponse(
                description="More calls than INGEST_MAX_BATCH_EVENTS, or a body over 500 KB"
            ),
        },
    )
    def post(self, request):
        envelope = self.envelope
        result = ingestion_services.events_ingest(
            workspace=request.user.workspace,
            raw_events=envelope.batch,
            received_at=timezone.now(),
            batch_context=envelope.context,
            batch_sent_at=envelope.sent_at,
        )
        return _result_response(result, single=False)
