"""GDPR / CCPA API: POST /api/v1/users/{user_id}/data-export and DELETE /api/v1/users/{user_id}.

Secret keys only: a write key is public, and an end-user token must not let a browser export or
erase anyone (its own user included: that request goes through the customer's support, which
calls these with its secret key). A user of another workspace is a 404, like an unknown one.
"""

import io

from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, permissions, status
from rest_framework.response import Response
from rest_framework.views import APIView

from core.jobs import enqueue
from guardrails.gdpr import erasure
from guardrails.gdpr import export as gdpr
from tenancy import selectors, tokens
from tenancy.authentication import ApiKeyAuthentication, EndUserTokenAuthentication
from tenancy.models import ApiKey

VACUUM_JOB = "guardrails.jobs.gdpr_vacuum_job"
"""Named, not imported: guardrails.jobs imports the gdpr sub-package."""


class SecretKeyOnly(permissions.BasePermission):
    message = "Only a secret key may export or erase a user's data."

    def has_permission(self, request, view):
        credentials = request.auth
        if isinstance(credentials, ApiKey) and credentials.has_scope(ApiKey.Scope.SERVER):
            return True
        if isinstance(credentials, ApiKey):
            self.message = "Write keys may only send events: exporting or erasing data needs a secret key."
        elif isinstance(credentials, tokens.EndUserToken):
            self.message = "End-user tokens cannot export or erase data: use a secret key from your server."
        return False


def _actor_label(request) -> str:
    return f"api key {request.auth.prefix}"


class _GdprApi(APIView):
    # The end-user token class comes first so that such a token is recognised and refused (403)
    # rather than looked up as an unknown API key (401).
    authentication_classes = [EndUserTokenAuthentication, ApiKeyAuthentication]
    permission_classes = [SecretKeyOnly]


class DataExportApi(_GdprApi):
    """Everything held on one person, as one JSON file (guardrails.gdpr.export)."""

    @extend_schema(
        request=None,
        responses={
            200: OpenApiResponse(description="The bundle: metadata, `sections`, one key per section"),
            403: OpenApiResponse(description="Write key or end-user token"),
            404: OpenApiResponse(description="No such user in the key's workspace"),
        },
    )
    def post(self, request, user_id: str):
        workspace = request.user.workspace
        end_user = selectors.end_user_get(workspace=workspace, external_id=user_id)
        if end_user is None:
            raise exceptions.NotFound(f"No such user: {user_id!r}.")
        buffer = io.BytesIO()
        gdpr.gdpr_export(
            workspace=workspace, end_user=end_user, stream=buffer, actor_label=_actor_label(request)
        )
        response = HttpResponse(buffer.getvalue(), content_type="application/json")
        response["Content-Disposition"] = (
            f'attachment; filename="data-export-{workspace.slug}-{end_user.pk}.json"'
        )
        return response


class EndUserEraseApi(_GdprApi):
    """Erase one person (guardrails.gdpr.erasure). 200 when done; 202 with a job id when their events
    are many and an RQ job scrubs them (its meta holds the progress)."""

    @extend_schema(
        request=None,
        responses={
            200: OpenApiResponse(description='{"status": "erased" | "already_erased", "erased", "events"}'),
            202: OpenApiResponse(description='{"status": "erasing", "job_id", "erased", "events"}'),
            403: OpenApiResponse(description="Write key or end-user token"),
            404: OpenApiResponse(description="No such user in the key's workspace (nothing was written)"),
        },
    )
    def delete(self, request, user_id: str):
        result = erasure.gdpr_erase(
            workspace=request.user.workspace,
            user_id=user_id,
            actor_label=_actor_label(request),
            inline_max_events=None if settings.JOBS_RUN_INLINE else settings.GDPR_ERASE_INLINE_MAX_EVENTS,
        )
        if result.status == "not_found":
            raise exceptions.NotFound(f"No such user: {user_id!r}.")
        if result.status == "erased" or (result.status == "already_erased" and result.events_erased):
            # Scrubbed here, so no events job will vacuum what the erasure changed (guardrails.gdpr.vacuum).
            enqueue(VACUUM_JOB, job_options={"result_ttl": 0})
        code = status.HTTP_202_ACCEPTED if result.status == "erasing" else status.HTTP_200_OK
        return Response(result.as_dict(), status=code)
