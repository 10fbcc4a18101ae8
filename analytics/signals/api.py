"""POST /api/v1/signals: a pre- or post-workflow survey answer, written to object storage.

Callers: an app with the workspace's write key (or a secret key), or a browser with an end-user
token, which may only send signals of its own user. Clients send fire-and-forget (seed 004): the
answer is 202 once the object is stored; bad input is 400 naming the field, a body over
SIGNALS_MAX_BODY_BYTES 413, and a refused signal is never stored.
"""

from django.conf import settings
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import permissions, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.signals import services
from analytics.signals.storage import StorageError, signals_storage
from onboarding.ingestion import guards
from onboarding.ingestion.parsers import SegmentJSONParser
from tenancy import tokens
from tenancy.authentication import ApiKeyAuthentication, EndUserTokenAuthentication
from tenancy.models import ApiKey

POST_ONLY_FIELDS = ("goal_completed", "experience_score")


class SignalsPermission(permissions.BasePermission):
    """A key allowed to send events, or an end-user token whose user is the signal's user_id."""

    message = "Not allowed."

    def has_permission(self, request, view):
        credentials = request.auth
        if isinstance(credentials, ApiKey):
            self.message = "This API key may not send signals."
            return credentials.has_scope(ApiKey.Scope.EVENTS_WRITE)
        if isinstance(credentials, tokens.EndUserToken):
            self.message = "This end-user token is for another user."
            user_id = request.data.get("user_id") if isinstance(request.data, dict) else None
            return user_id is None or str(user_id) == credentials.external_id
        return False


class SignalCreateApi(APIView):
    authentication_classes = [EndUserTokenAuthentication, ApiKeyAuthentication]
    permission_classes = [SignalsPermission]
    # JSON (gzip allowed) read no further than the limit: an oversized body is 413 before parsing.
    parser_classes = [SegmentJSONParser]
    max_body_bytes = settings.SIGNALS_MAX_BODY_BYTES

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # Ingestion's admission checks: a key's event rate limit counts a signal as one event
        # (429 with Retry-After, nothing stored); end-user tokens are not counted there.
        guards.request_admit(request=request, call_type="track")

    class SignalInputSerializer(serializers.Serializer):
        stage = serializers.ChoiceField(choices=("pre", "post"))
        user_id = serializers.CharField(max_length=128)
        session_id = serializers.CharField(max_length=128)
        intent = serializers.CharField(max_length=200, required=False, allow_blank=True)
        confidence = serializers.IntegerField(min_value=1, max_value=5, required=False)
        goal = serializers.CharField(max_length=200, required=False, allow_blank=True)
        goal_completed = serializers.BooleanField(required=False)
        experience_score = serializers.IntegerField(min_value=1, max_value=10, required=False)
        text = serializers.CharField(max_length=2000, required=False, allow_blank=True)
        timestamp = serializers.DateTimeField(required=False)

        def validate(self, attrs):
            # Unchecked fields could carry PII past the detector: every field must be known.
            unknown = set(self.initial_data) - set(self.fields) - {"writeKey"}
            if unknown:
                raise serializers.ValidationError({name: "unknown field" for name in sorted(unknown)})
            if attrs["stage"] == "pre":
                if "confidence" not in attrs:
                    raise serializers.ValidationError({"confidence": "required on a pre signal (1-5)"})
                for name in POST_ONLY_FIELDS:
                    if name in attrs:
                        raise serializers.ValidationError({name: "only on a post signal"})
            else:
                for name in POST_ONLY_FIELDS:
                    if name not in attrs:
                        raise serializers.ValidationError({name: "required on a post signal"})
            return attrs

    class SignalOutputSerializer(serializers.Serializer):
        accepted = serializers.BooleanField()
        signal_id = serializers.CharField()
        correlation_key = serializers.CharField()

    @extend_schema(
        request=SignalInputSerializer,
        responses={
            202: SignalOutputSerializer,
            400: OpenApiResponse(description="Malformed, or carries personal data: `errors` names the field"),
            413: OpenApiResponse(description="Body over SIGNALS_MAX_BODY_BYTES"),
            429: OpenApiResponse(description="The key is over its event rate limit; nothing stored"),
            503: OpenApiResponse(description="The object store is unavailable; nothing stored"),
        },
    )
    def post(self, request):
        serializer = self.SignalInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            stored = services.signal_record(
                storage=signals_storage(),
                workspace_id=request.auth.workspace_id,
                payload=serializer.validated_data,
                received_at=timezone.now(),
            )
        except services.SignalRefused as refused:
            return Response(
                {
                    "detail": f"Signal refused: {refused.field}: {refused.reason}.",
                    "errors": [{"field": refused.field, "reason": refused.reason}],
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        except StorageError:
            return Response(
                {"detail": "The signals store is unavailable; nothing was stored. Retry later."},
                status=status.HTTP_503_SERVICE_UNAVAILABLE,
            )
        output = {"accepted": True, "signal_id": stored.signal_id, "correlation_key": stored.correlation_key}
        return Response(self.SignalOutputSerializer(output).data, status=status.HTTP_202_ACCEPTED)
