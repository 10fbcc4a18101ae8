"""GET /api/v1/users/{user_id}/experiments: the arms a client app shows its user.

Callers as for the progress API: a secret key (any user of its workspace) or the user's own
end-user token. Write keys only send events.
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from experiments import selectors
from tenancy import selectors as tenancy_selectors
from tenancy.authentication import ActsForUser, ApiKeyAuthentication, EndUserTokenAuthentication


class _PathVersionOutput(serializers.Serializer):
    path = serializers.CharField()
    version = serializers.IntegerField()


class AssignmentOutputSerializer(serializers.Serializer):
    experiment = serializers.CharField(help_text="The experiment's key.")
    experiment_status = serializers.CharField()
    variant = serializers.CharField(help_text="The arm's key; A is control.")
    assigned_at = serializers.DateTimeField()
    path_version = _PathVersionOutput(allow_null=True)


class UserExperimentsApi(APIView):
    """The user's assignments, oldest first: sticky, written once at path entry."""

    authentication_classes = [EndUserTokenAuthentication, ApiKeyAuthentication]
    permission_classes = [ActsForUser]
    allows_end_user_tokens = True

    class UserExperimentsOutputSerializer(serializers.Serializer):
        user_id = serializers.CharField()
        experiments = AssignmentOutputSerializer(many=True)

    @extend_schema(
        responses={
            200: UserExperimentsOutputSerializer,
            403: OpenApiResponse(description="Write key, or a token for another user"),
            404: OpenApiResponse(description="No such user"),
        }
    )
    def get(self, request, user_id: str):
        workspace = request.user.workspace
        end_user = tenancy_selectors.end_user_get(workspace=workspace, external_id=user_id)
        if end_user is None:
            raise exceptions.NotFound(f"No such user: {user_id!r}.")
        assignments = selectors.user_assignments(workspace=workspace, end_user=end_user)
        body = {"user_id": user_id, "experiments": [selectors.assignment_as_dict(row) for row in assignments]}
        return Response(self.UserExperimentsOutputSerializer(body).data)
