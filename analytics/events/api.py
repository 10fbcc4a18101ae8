"""POST/GET /api/v1/analytics/funnels/events and GET /api/v1/analytics/cohorts.

Secret keys only (a write key is public), scoped to the key's workspace. Both run raw SQL under
a statement timeout; when it times out the last result of the same parameters is returned with
`stale: true` and its age, or 503 when there is none.
"""

from datetime import date, timedelta

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import JSONParser
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.events import inputs
from analytics.events.cohorts import BY, MAX_WEEKS, cohort_retention
from analytics.events.funnel_sql import FunnelQuery, FunnelStep
from analytics.events.funnels import ORDERS, event_funnel
from analytics.events.raw import RawQueryUnavailable
from tenancy.authentication import ApiKeyAuthentication, HasScope
from tenancy.models import ApiKey
from tenancy.selectors import SEGMENT_TRAITS


def _parameter(name: str, kind: type, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, kind, OpenApiParameter.QUERY, required=False, description=description)


RANGE_PARAMETERS = [
    _parameter("from", date, f"First UTC day (default: {inputs.DEFAULT_RANGE_DAYS} days to `to`)."),
    _parameter(
        "to", date, f"Last UTC day, inclusive (default: today); at most {inputs.MAX_RANGE_DAYS} days."
    ),
    *[_parameter(name, str, f"Only end users whose {name} is this.") for name in SEGMENT_TRAITS],
]
STALE_NOTE = "; `stale` true (with `stale_age_seconds`) when the query timed out and this is the last result"
UNAVAILABLE = OpenApiResponse(description="The query timed out and no earlier result is cached")


class _SecretKeyApi(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasScope]
    required_scope = ApiKey.Scope.SERVER


def _unavailable(error: RawQueryUnavailable) -> Response:
    return Response({"detail": error.reason}, status=status.HTTP_503_SERVICE_UNAVAILABLE)


def _funnel_response(request, data: dict) -> Response:
    query = FunnelQuery(
        workspace=request.user.workspace,
        steps=tuple(FunnelStep(event=step["event"], where=step.get("where") or {}) for step in data["steps"]),
        window_seconds=data["window_seconds"],
        order=data["order"],
        start=data["start"],
        end=data["end"],
        segment=inputs.segment_of(data),
        breakdown=data.get("breakdown"),
    )
    try:
        result = event_funnel(query)
    except RawQueryUnavailable as error:
        return _unavailable(error)
    return Response(
        {
            "from": data["start"].date(),
            "to": (data["end"] - timedelta(days=1)).date(),
            "order": query.order,
            "window_seconds": query.window_seconds,
            "segment": query.segment,
            **result,
        }
    )


FUNNEL_RESPONSES = {
    200: OpenApiResponse(
        description="`steps`: per step `count`, `conversion_from_first`, `conversion_from_previous`, "
        "`median_seconds_from_previous`, `p90_seconds_from_previous`; `breakdown`: the same per "
        "value of the trait (top 10, then `other`)" + STALE_NOTE
    ),
    400: OpenApiResponse(
        description="A field is invalid (steps, order, breakdown, range...): `errors` names it"
    ),
    503: UNAVAILABLE,
}


class EventFunnelApi(_SecretKeyApi):
    """How many end users did each event of an ordered list, within a conversion window."""

    parser_classes = [JSONParser]

    @extend_schema(
        operation_id="analytics_event_funnel",
        request=inputs.FunnelInputSerializer,
        responses=FUNNEL_RESPONSES,
    )
    def post(self, request):
        serializer = inputs.FunnelInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return _funnel_response(request, serializer.validated_data)

    @extend_schema(
        operation_id="analytics_event_funnel_shared",
        parameters=[
            OpenApiParameter(
                "steps",
                str,
                OpenApiParameter.QUERY,
                required=True,
                description=f"{inputs.MIN_STEPS} to {inputs.MAX_STEPS} event names, comma-separated",
            ),
            _parameter("window_seconds", int, "Conversion window from the first step (default 14 days)."),
            _parameter("order", str, f"One of {', '.join(ORDERS)} (default ordered)."),
            _parameter("breakdown", str, f"One of {', '.join(SEGMENT_TRAITS)}."),
            *RANGE_PARAMETERS,
        ],
        responses=FUNNEL_RESPONSES,
    )
    def get(self, request):
        serializer = inputs.FunnelQueryStringSerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        return _funnel_response(request, serializer.validated_data)


class CohortRetentionApi(_SecretKeyApi):
    """Retention by signup or enrolment week, and activation by enrolment week."""

    @extend_schema(
        operation_id="analytics_cohorts",
        parameters=[
            _parameter("by", str, f"Cohorts by {' or '.join(BY)} week (default signup)."),
            _parameter("event", str, "Retained = did this event in the week (default: any event)."),
            _parameter("weeks", int, f"Weeks since the cohort's week, 1 to {MAX_WEEKS} (default 8)."),
            *RANGE_PARAMETERS,
        ],
        responses={
            200: OpenApiResponse(
                description="`cohorts`: per week `size`, `retained` and `retention` per week since "
                "(null: not begun); `activation`: per enrolment week `enrollments`, `activated`, "
                "`activation_share`, `activated_by_week`" + STALE_NOTE
            ),
            400: OpenApiResponse(description="A field is invalid: `errors` names it"),
            503: UNAVAILABLE,
        },
    )
    def get(self, request):
        serializer = inputs.CohortInputSerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        query = inputs.cohort_query(workspace=request.user.workspace, data=data)
        try:
            result = cohort_retention(query)
        except RawQueryUnavailable as error:
            return _unavailable(error)
        return Response(
            {
                "by": query.by,
                "event": query.event,
                "weeks": query.weeks,
                "from": query.start.date(),
                "to": (query.end - timedelta(days=1)).date(),
                "segment": query.segment,
                **result,
            }
        )
