"""The analytics read API of path funnels and metrics, mounted under /api/v1/analytics/:

- GET paths/{path_key}/funnel?version=N&from=&to=&persona=&signup_source=&company_size=&use_case=
- GET metrics?name=activation_rate&from=&to=&path=&version=&step=&persona=...&channel=&variant=

Secret keys only, scoped to the key's workspace, read from the rollups (never raw rows). Bad
input is a 400 naming the field; an unknown path, version or step a 404. The range is capped at
MAX_RANGE_DAYS: neither tenancy nor guardrails holds an event retention setting to cap it with.
"""

from datetime import date, timedelta

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.funnels.path_funnel import path_funnel
from analytics.funnels.query import RollupQuery
from analytics.metrics.compute import MetricRequest, metric_value
from analytics.metrics.definitions import METRIC_NAMES, METRICS
from analytics.models import RollupCursor
from paths import selectors as paths_selectors
from paths.models import Path, PathVersion
from tenancy.authentication import ApiKeyAuthentication, HasScope
from tenancy.models import ApiKey

MAX_RANGE_DAYS = 400
DEFAULT_RANGE_DAYS = 30
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(9999, 12, 30)
MAX_NUMBER = 2**31 - 1
SEGMENTS = ("persona", "signup_source", "company_size", "use_case")


class RangeInputSerializer(serializers.Serializer):
    """A range of UTC days, `to` inclusive (default: the last 30 days to today), and segments."""

    def get_fields(self):
        return {
            "from": serializers.DateField(required=False),
            "to": serializers.DateField(required=False),
            **{name: serializers.CharField(required=False, max_length=100) for name in SEGMENTS},
        }

    def validate(self, attrs):
        for name in ("from", "to"):
            if name in attrs and not FIRST_DAY <= attrs[name] <= LAST_DAY:
                raise serializers.ValidationError({name: f"Must be between {FIRST_DAY} and {LAST_DAY}."})
        date_to = attrs.get("to") or timezone.now().date()
        date_from = attrs.get("from") or date_to - timedelta(days=DEFAULT_RANGE_DAYS - 1)
        if date_from > date_to:
            raise serializers.ValidationError({"to": f"{date_to} is before from ({date_from})."})
        if (date_to - date_from).days + 1 > MAX_RANGE_DAYS:
            raise serializers.ValidationError(
                {"from": f"The range spans more than {MAX_RANGE_DAYS} days (the longest range kept)."}
            )
        return {**attrs, "from": date_from, "to": date_to}


class FunnelInputSerializer(RangeInputSerializer):
    def get_fields(self):
        return {
            **super().get_fields(),
            "version": serializers.IntegerField(required=False, min_value=1, max_value=MAX_NUMBER),
        }


class MetricInputSerializer(RangeInputSerializer):
    def get_fields(self):
        return {
            **super().get_fields(),
            "name": serializers.ChoiceField(
                choices=list(METRIC_NAMES),
                error_messages={
                    "required": f"Name a metric: one of {', '.join(METRIC_NAMES)}.",
                    "invalid_choice": f'"{{input}}" is not a metric: one of {", ".join(METRIC_NAMES)}.',
                },
            ),
            "path": serializers.CharField(required=False, max_length=80),
            "version": serializers.IntegerField(required=False, min_value=1, max_value=MAX_NUMBER),
            "step": serializers.CharField(required=False, max_length=80),
            "channel": serializers.CharField(required=False, max_length=20),
            "variant": serializers.CharField(required=False, max_length=20),
            "route": serializers.CharField(required=False, max_length=200),
            "method": serializers.CharField(required=False, max_length=10),
        }

    def validate(self, attrs):
        attrs = super().validate(attrs)
        for needs_path in ("version", "step"):
            if needs_path in attrs and "path" not in attrs:
                raise serializers.ValidationError({needs_path: f"A {needs_path} needs its path (path=)."})
        allowed = set(METRICS[attrs["name"]].segments)
        for name in (*SEGMENTS, "path", "version", "step", "channel", "variant", "route", "method"):
            filter_name = "path_version" if name == "version" else name
            if name in attrs and filter_name not in allowed:
                takes = ", ".join(sorted(allowed)) or "no filter"
                raise serializers.ValidationError(
                    {name: f"{attrs['name']} cannot be sliced by {name}: it takes {takes}."}
                )
        return attrs


def _path(request, path_key: str) -> Path:
    found = paths_selectors.path_get(workspace=request.user.workspace, key=path_key)
    if found is None:
        raise exceptions.NotFound(f"No such path: {path_key!r}.")
    return found


def _version(request, path: Path, number: int | None) -> PathVersion:
    """Version `number` of the path; without one, its published version, else its newest."""
    versions = paths_selectors.path_versions(workspace=request.user.workspace, path=path)
    if number is not None:
        found = versions.filter(number=number).first()
    else:
        found = versions.filter(status=PathVersion.Status.PUBLISHED).first() or versions.first()
    if found is None:
        raise exceptions.NotFound(f"Path {path.key!r} has no version {number or ''}.".replace(" .", "."))
    return found


def _rollups_refreshed_at(request):
    cursor = RollupCursor.objects.filter(workspace=request.user.workspace).first()
    return cursor.refreshed_at if cursor is not None else None


def _parameter(name: str, kind: type, description: str, *, required: bool = False) -> OpenApiParameter:
    return OpenApiParameter(name, kind, OpenApiParameter.QUERY, required=required, description=description)


RANGE_PARAMETERS = [
    _parameter("from", date, f"First UTC day (default: {DEFAULT_RANGE_DAYS} days up to `to`)."),
    _parameter(
        "to", date, f"Last UTC day, inclusive (default: today); at most {MAX_RANGE_DAYS} days in all."
    ),
    *[_parameter(name, str, f"End users whose {name} is this ('' for unknown).") for name in SEGMENTS],
]


class _AnalyticsApi(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasScope]
    required_scope = ApiKey.Scope.SERVER


def _given(request) -> dict:
    """The query parameters that carry a value: `persona=` (empty) means not filtered."""
    return {name: value for name, value in request.query_params.items() if value != ""}


def _funnel_step(step) -> dict:
    return {
        "key": step.key,
        "title": step.title,
        "entered": step.entered,
        "completed": step.completed,
        "advanced": step.advanced,
        "drop_off_rate": step.drop_off_rate,
        "conversion_from_start": step.conversion_from_start,
        "median_seconds_to_complete": step.median_seconds_to_complete,
        "p90_seconds_to_complete": step.p90_seconds_to_complete,
    }


class PathFunnelApi(_AnalyticsApi):
    """A path version's funnel: per step in order, entered, completed, advanced, drop-off,
    conversion from the start and the median and p90 seconds to complete (docs/analytics.md)."""

    @extend_schema(
        operation_id="analytics_path_funnel",
        parameters=[
            _parameter("version", int, "The version's number (default: the published one, else the newest)."),
            *RANGE_PARAMETERS,
        ],
        responses={
            200: OpenApiResponse(
                description="`steps` in order, with the range, segments and rollup freshness"
            ),
            400: OpenApiResponse(description="A field is invalid: `errors` names it"),
            404: OpenApiResponse(
                description="No such path, or no such version of it, in the key's workspace"
            ),
        },
    )
    def get(self, request, path_key: str):
        serializer = FunnelInputSerializer(data=_given(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        path = _path(request, path_key)
        version = _version(request, path, data.get("version"))
        segments = {name: data[name] for name in SEGMENTS if name in data}
        query = RollupQuery(request.user.workspace, data["from"], data["to"], segments=segments)
        return Response(
            {
                "path": path.key,
                "version": version.number,
                "from": data["from"],
                "to": data["to"],
                "segments": segments,
                "steps": [_funnel_step(step) for step in path_funnel(query, version)],
                "rollups_refreshed_at": _rollups_refreshed_at(request),
            }
        )


def _metric_request(request, data: dict) -> MetricRequest:
    workspace = request.user.workspace
    filters = {
        name: data[name]
        for name in (*SEGMENTS, "step", "channel", "variant", "route", "method")
        if name in data
    }
    path_version_ids = None
    if "path" in data:
        path = _path(request, data["path"])
        filters["path"] = path.key
        versions = paths_selectors.path_versions(workspace=workspace, path=path)
        if "version" in data:
            version = _version(request, path, data["version"])
            filters["path_version"] = version.number
            versions = versions.filter(pk=version.pk)
        path_version_ids = tuple(versions.values_list("pk", flat=True))
        if "step" in data:
            steps = paths_selectors.steps_of_versions(workspace=workspace, path_version_ids=path_version_ids)
            if not any(step.key == data["step"] for found in steps.values() for step in found):
                raise exceptions.NotFound(f"Path {path.key!r} has no step {data['step']!r}.")
    return MetricRequest(workspace, data["from"], data["to"], path_version_ids, filters)


class MetricApi(_AnalyticsApi):
    """One metric of analytics.metrics.definitions over a range and segment: its value, numerator
    and denominator (pending for activation_rate, per-step rows for step metrics) and its
    definition. A metric not measured yet answers value null with the reason."""

    @extend_schema(
        operation_id="analytics_metric",
        parameters=[
            _parameter("name", str, f"The metric: one of {', '.join(METRIC_NAMES)}.", required=True),
            _parameter("path", str, "A path key: its enrollments (all versions unless `version`)."),
            _parameter("version", int, "With path: that version's number."),
            _parameter("step", str, "With path, for step metrics: that step's key."),
            _parameter("channel", str, "Nudge metrics: a channel."),
            _parameter("variant", str, "Nudge metrics: a template version's variant."),
            _parameter("route", str, "api_latency_p95_ms: a resolved URL name."),
            _parameter("method", str, "api_latency_p95_ms: an HTTP method."),
            *RANGE_PARAMETERS,
        ],
        responses={
            200: OpenApiResponse(
                description="`value` (null when there is nothing to count or not yet measured, "
                "with `reason`), `numerator`, `denominator`, `pending`, `definition`"
            ),
            400: OpenApiResponse(description="Unknown metric (the valid names listed) or an invalid field"),
            404: OpenApiResponse(description="No such path, version or step in the key's workspace"),
        },
    )
    def get(self, request):
        serializer = MetricInputSerializer(data=_given(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        definition = METRICS[data["name"]]
        computed = metric_value(definition.name, _metric_request(request, data))
        body = {
            "name": definition.name,
            "value": computed.value,
            "unit": definition.unit,
            "numerator": computed.numerator,
            "denominator": computed.denominator,
            "from": data["from"],
            "to": data["to"],
            **computed.extra,
            "definition": definition.as_dict(),
        }
        if definition.name == "activation_rate":
            body["pending"] = computed.pending
        if definition.source == "rollups":
            body["rollups_refreshed_at"] = _rollups_refreshed_at(request)
        return Response(body)
