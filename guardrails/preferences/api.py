"""Client API of the guardrails app: an end user's preferences, /api/v1/users/{user_id}/preferences.

Authenticated exactly like the progress API, with its authentication and permission classes: a
secret key for any user of its workspace, or an end-user token for that one user (a browser's
preference centre).
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from guardrails.models import ConsentRecord
from guardrails.preferences import selectors, services
from guardrails.preferences.validation import PreferencesInvalid

# The progress API's rule, so both count token misuse alike (guardrails.abuse.token_misuse).
from tenancy.authentication import ActsForUser, ApiKeyAuthentication, EndUserTokenAuthentication
from tenancy.end_users import end_user_for_request
from tenancy.models import ApiKey


class _PurposesOutput(serializers.Serializer):
    onboarding = serializers.BooleanField()
    marketing = serializers.BooleanField()


class _QuietHoursOutput(serializers.Serializer):
    start = serializers.CharField(allow_null=True, help_text="HH:MM in the user's time zone")
    end = serializers.CharField(allow_null=True)
    timezone = serializers.CharField(help_text="The user's IANA time zone (read-only; set by identify)")
    source = serializers.ChoiceField(choices=["user", "workspace"], allow_null=True)


class PreferencesOutputSerializer(serializers.Serializer):
    """The preferences (documentation; the body is built by
    guardrails.preferences.selectors.preferences_state)."""

    user_id = serializers.CharField()
    channels = serializers.DictField(child=_PurposesOutput(), help_text="channel -> purpose -> allowed")
    quiet_hours = _QuietHoursOutput()
    snooze_until = serializers.DateTimeField(allow_null=True)
    do_not_disturb = serializers.BooleanField()


class PreferencesApi(APIView):
    """GET the preferences; PUT any of channels, quiet_hours, snooze_until, do_not_disturb.

    A PUT changes the fields it sends and leaves the others (a GET body sent back unchanged is
    no change). It is applied whole or not at all: a 400 lists every field at fault and why.
    """

    authentication_classes = [EndUserTokenAuthentication, ApiKeyAuthentication]
    permission_classes = [ActsForUser]
    parser_classes = [JSONParser]
    allows_end_user_tokens = True

    @extend_schema(responses={200: PreferencesOutputSerializer})
    def get(self, request, user_id: str):
        end_user = end_user_for_request(request, user_id)
        return Response(PreferencesOutputSerializer(selectors.preferences_state(end_user=end_user)).data)

    @extend_schema(
        request=PreferencesOutputSerializer,
        responses={
            200: PreferencesOutputSerializer,
            400: OpenApiResponse(description="detail and errors [{field, reason}], one per field at fault"),
            403: OpenApiResponse(description="Write key, or a token for another user"),
            404: OpenApiResponse(description="No such user"),
        },
    )
    def put(self, request, user_id: str):
        end_user = end_user_for_request(request, user_id)
        if isinstance(request.auth, ApiKey):
            source, actor_label = ConsentRecord.Source.API, f"API key {request.auth.prefix}"
        else:
            source, actor_label = ConsentRecord.Source.PREFERENCE_CENTRE, ""
        try:
            state = services.preferences_update(
                end_user=end_user,
                data=request.data,
                source=source,
                actor_label=actor_label,
                request_id=request.META.get("HTTP_X_REQUEST_ID", "")[:64],
            )
        except PreferencesInvalid as invalid:
            fields = ", ".join(error["field"] for error in invalid.errors)
            return Response(
                {"detail": f"Invalid preferences ({fields}): nothing was changed.", "errors": invalid.errors},
                status=status.HTTP_400_BAD_REQUEST,
            )
        return Response(PreferencesOutputSerializer(state).data)
