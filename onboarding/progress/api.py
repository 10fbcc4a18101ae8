"""Client API for an end user's onboarding: /api/v1/users/{user_id}/token and .../onboarding.

Callers: a server with a secret key (any user of its workspace), or a browser or app with an
end-user token (that one user only). Write keys only send events. Every successful call returns
the enrollment's state with `ETag: "<revision>"`; a write carrying a stale `If-Match` revision
gets 409 with the current state, so a client never overwrites a change it has not seen.
"""

from collections.abc import Callable

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from onboarding.models import Enrollment
from onboarding.progress import selectors as progress_selectors
from onboarding.progress import services as progress_services
from tenancy import selectors, tokens
from tenancy.authentication import ActsForUser, ApiKeyAuthentication, EndUserTokenAuthentication

# --- Authorization (tenancy.authentication.ActsForUser) and preconditions ------------------------


class PreconditionRequired(exceptions.APIException):
    status_code = 428
    default_detail = 'This request needs an If-Match header with the revision you read, e.g. If-Match: "3".'
    default_code = "precondition_required"


class _ProgressApi(APIView):
    authentication_classes = [EndUserTokenAuthentication, ApiKeyAuthentication]
    permission_classes = [ActsForUser]
    parser_classes = [JSONParser]
    allows_end_user_tokens = True


# --- Enrollment lookup, If-Match, responses -------------------------------------------------------


def _enrollment_for(request, user_id: str) -> Enrollment:
    workspace = request.user.workspace
    enrollment = progress_selectors.enrollment_get_for_user(workspace=workspace, user_id=user_id)
    token = request.auth if isinstance(request.auth, tokens.EndUserToken) else None
    if token is not None and enrollment is not None and enrollment.end_user_id != token.end_user_id:
        # Same external id, another person: the user was deleted and re-created after issuing.
        raise exceptions.PermissionDenied("This end-user token is for another user.")
    if enrollment is not None:
        return enrollment
    if selectors.end_user_get(workspace=workspace, external_id=user_id) is None:
        raise exceptions.NotFound(f"No such user: {user_id!r}.")
    raise exceptions.NotFound(f"User {user_id!r} has no enrollment.")


def _if_match(request) -> int | None:
    """The revision in If-Match ("3", W/"3" or 3); None when absent or `*`."""
    header = request.META.get("HTTP_IF_MATCH")
    if header is None or header.strip() == "*":
        return None
    value = header.strip().removeprefix("W/").strip('"')
    if not value.isdigit():
        raise exceptions.ValidationError(
            {"If-Match": f'must be one revision number, e.g. "3"; got {header.strip()!r}'}
        )
    return int(value)


def _state_response(state: dict, *, code: int = status.HTTP_200_OK) -> Response:
    return Response(state, status=code, headers={"ETag": f'"{state["revision"]}"'})


def _stale_response(state: dict, expected: int) -> Response:
    return Response(
        {
            "detail": (
                f"Revision {expected} is stale: the enrollment is at revision {state['revision']}. "
                "Apply your change to the current state and retry with its revision."
            ),
            "current": state,
        },
        status=status.HTTP_409_CONFLICT,
        headers={"ETag": f'"{state["revision"]}"'},
    )


def _error_response(error: Exception, enrollment: Enrollment) -> Response:
    if isinstance(error, progress_services.UnknownStep):
        return Response(
            {"detail": f"No step {error.step_key!r} on this path."}, status=status.HTTP_404_NOT_FOUND
        )
    if isinstance(error, progress_services.StepNotSkippable):
        step_key = error.step_key
        return Response(
            {
                "detail": f"Step {step_key!r} is required: only optional steps can be skipped.",
                "errors": [{"step": step_key, "field": None, "reason": "required step, not skippable"}],
            },
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(error, progress_services.InvalidAnswers):
        return Response(
            {"detail": f"Invalid answers: {_summary(error.errors)}.", "errors": error.errors},
            status=status.HTTP_400_BAD_REQUEST,
        )
    if isinstance(error, progress_services.IncompleteEnrollment):
        return Response(
            {"detail": f"The onboarding is not complete: {_summary(error.errors)}.", "errors": error.errors},
            status=status.HTTP_400_BAD_REQUEST,
        )
    # EnrollmentNotActive: abandoned
    enrollment.refresh_from_db()
    state = progress_selectors.enrollment_state(enrollment=enrollment)
    return Response(
        {"detail": f"This enrollment is {state['status']}: it can no longer change.", "current": state},
        status=status.HTTP_409_CONFLICT,
        headers={"ETag": f'"{state["revision"]}"'},
    )


def _summary(errors: list[dict]) -> str:
    parts = []
    for error in errors:
        where = ".".join(str(part) for part in (error.get("step"), error.get("field")) if part)
        parts.append(f"{where}: {error.get('reason')}" if where else str(error.get("reason")))
    return "; ".join(parts) or "see errors"


_SERVICE_ERRORS = (
    progress_services.UnknownStep,
    progress_services.StepNotSkippable,
    progress_services.InvalidAnswers,
    progress_services.IncompleteEnrollment,
    progress_services.EnrollmentNotActive,
)


def _write(
    request,
    user_id: str,
    action: Callable[[Enrollment, int | None], Enrollment],
    *,
    precondition_required: bool,
) -> Response:
    """Run one service with the If-Match revision. Without If-Match (or with `*`) the client
    asked for no precondition, so the service checks none (expected_revision=None)."""
    enrollment = _enrollment_for(request, user_id)
    expected = _if_match(request)
    if precondition_required and "HTTP_IF_MATCH" not in request.META:
        raise PreconditionRequired()
    try:
        enrollment = action(enrollment, expected)
    except progress_services.StaleRevision as stale:
        return _stale_response(stale.state, expected)
    except _SERVICE_ERRORS as error:
        return _error_response(error, enrollment)
    return _state_response(progress_selectors.saved_state(enrollment))


# --- Schema documentation -----------------------------------------------------------------------


class _PathOutput(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    version = serializers.IntegerField()


class StateOutputSerializer(serializers.Serializer):
    """The body of every successful call (documentation; the state is built by the service)."""

    user_id = serializers.CharField()
    enrollment_id = serializers.IntegerField()
    path = _PathOutput()
    status = serializers.ChoiceField(choices=Enrollment.Status.choices)
    current_step = serializers.CharField(allow_null=True)
    revision = serializers.IntegerField()
    percent_complete = serializers.IntegerField()
    answers = serializers.DictField()
    steps = serializers.ListField(child=serializers.DictField())
    enrolled_at = serializers.DateTimeField()
    completed_at = serializers.DateTimeField(allow_null=True)
    experiments = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        help_text="The user's experiment arms [{experiment, variant, assigned_at, path_version}], "
        "present only when the user is in an experiment (GET /api/v1/users/{id}/experiments).",
    )


_IF_MATCH = OpenApiParameter(
    "If-Match", location=OpenApiParameter.HEADER, required=False, description='The revision you read: "3".'
)
_WRITE_RESPONSES = {
    200: StateOutputSerializer,
    400: OpenApiResponse(description="Invalid input: detail and errors [{step, field, reason}]"),
    403: OpenApiResponse(description="Write key, or a token for another user"),
    404: OpenApiResponse(description="No such user, no enrollment, or no such step"),
    409: OpenApiResponse(description="Stale revision or finished enrollment: detail and current state"),
}


# --- Views ----------------------------------------------------------------------------------------


class EndUserTokenCreateApi(_ProgressApi):
    """A short-lived token for one end user, for their browser or app. Secret key only."""

    allows_end_user_tokens = False

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField()
        expires_at = serializers.DateTimeField()

    @extend_schema(request=None, responses={200: OutputSerializer})
    def post(self, request, user_id: str):
        end_user = selectors.end_user_get(workspace=request.user.workspace, external_id=user_id)
        if end_user is None:
            raise exceptions.NotFound(f"No such user: {user_id!r}.")
        token, expires_at = tokens.token_issue(end_user=end_user)
        return Response(self.OutputSerializer({"token": token, "expires_at": expires_at}).data)


class EnrollmentDetailApi(_ProgressApi):
    """GET the state; PATCH the current step or answers (If-Match required)."""

    class PatchInputSerializer(serializers.Serializer):
        current_step = serializers.CharField(required=False, max_length=80)
        answers = serializers.DictField(child=serializers.DictField(), required=False)

        def validate(self, attrs):
            unknown = set(self.initial_data) - set(self.fields)
            if unknown:
                raise serializers.ValidationError({name: "unknown field" for name in sorted(unknown)})
            if not attrs:
                raise serializers.ValidationError("send current_step, answers or both")
            return attrs

    @extend_schema(responses={200: StateOutputSerializer})
    def get(self, request, user_id: str):
        enrollment = _enrollment_for(request, user_id)
        return _state_response(progress_selectors.enrollment_state(enrollment=enrollment))

    @extend_schema(
        request=PatchInputSerializer,
        parameters=[_IF_MATCH],
        responses={**_WRITE_RESPONSES, 428: OpenApiResponse(description="If-Match missing")},
    )
    def patch(self, request, user_id: str):
        if not isinstance(request.data, dict):
            raise exceptions.ValidationError({"(request)": "the body must be a JSON object"})
        serializer = self.PatchInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        return _write(
            request,
            user_id,
            lambda enrollment, revision: progress_services.enrollment_patch(
                enrollment=enrollment,
                expected_revision=revision,
                current_step_key=data.get("current_step"),
                answers=data.get("answers"),
            ),
            precondition_required=True,
        )


class StepCompleteApi(_ProgressApi):
    @extend_schema(request=None, parameters=[_IF_MATCH], responses=_WRITE_RESPONSES)
    def post(self, request, user_id: str, step_key: str):
        return _write(
            request,
            user_id,
            lambda enrollment, revision: progress_services.step_complete(
                enrollment=enrollment, step_key=step_key, expected_revision=revision, method="api"
            ),
            precondition_required=False,
        )


class StepSkipApi(_ProgressApi):
    @extend_schema(request=None, parameters=[_IF_MATCH], responses=_WRITE_RESPONSES)
    def post(self, request, user_id: str, step_key: str):
        return _write(
            request,
            user_id,
            lambda enrollment, revision: progress_services.step_skip(
                enrollment=enrollment, step_key=step_key, expected_revision=revision
            ),
            precondition_required=False,
        )


class StepBackApi(_ProgressApi):
    @extend_schema(request=None, parameters=[_IF_MATCH], responses=_WRITE_RESPONSES)
    def post(self, request, user_id: str):
        return _write(
            request,
            user_id,
            lambda enrollment, revision: progress_services.step_back(
                enrollment=enrollment, expected_revision=revision
            ),
            precondition_required=False,
        )


class AnswersSaveApi(_ProgressApi):
    class InputSerializer(serializers.Serializer):
        step = serializers.CharField(max_length=80)
        answers = serializers.DictField()

    @extend_schema(request=InputSerializer, parameters=[_IF_MATCH], responses=_WRITE_RESPONSES)
    def post(self, request, user_id: str):
        serializer = self.InputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        return _write(
            request,
            user_id,
            lambda enrollment, revision: progress_services.answers_save(
                enrollment=enrollment,
                step_key=data["step"],
                answers=data["answers"],
                expected_revision=revision,
            ),
            precondition_required=False,
        )


class EnrollmentCompleteApi(_ProgressApi):
    @extend_schema(request=None, parameters=[_IF_MATCH], responses=_WRITE_RESPONSES)
    def post(self, request, user_id: str):
        return _write(
            request,
            user_id,
            lambda enrollment, revision: progress_services.enrollment_complete(
                enrollment=enrollment, expected_revision=revision
            ),
            precondition_required=False,
        )
