"""The read API of the remaining dashboard queries, mounted under /api/v1/analytics/:

- GET activation?from=&to=&path=&version=&persona=&signup_source=&company_size=&use_case=
- GET stuck?path=&version=
- GET ops?from=&to=&bucket=minute|hour

The Ops dashboard's instance-wide figures (API latency, error rate, RQ queue depths) belong to the
operator of the whole installation, not to one customer's key: they are on /metrics, not here.

The same functions the Product dashboard and the Overview call (analytics.funnels.trends,
onboarding.stuck.selectors), so the numbers agree. Query parsing, authentication and the error
format are the funnel and metrics endpoints' (analytics.api): secret keys only, the key's
workspace only, bad input a 400 naming the field, an unknown path or version a 404.
"""

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.response import Response

from analytics.api import (
    MAX_NUMBER,
    RANGE_PARAMETERS,
    SEGMENTS,
    RangeInputSerializer,
    _AnalyticsApi,
    _given,
    _parameter,
    _path,
    _rollups_refreshed_at,
    _version,
)
from analytics.funnels.query import RollupQuery
from analytics.funnels.trends import activation_distribution, daily_trend
from analytics.ops import queries as ops_queries
from analytics.rollups.services import activation_window_days
from onboarding.stuck import selectors as stuck_selectors
from paths import selectors as paths_selectors

PATH_PARAMETERS = [
    _parameter("path", str, "A path key: its enrollments (all versions unless `version`)."),
    _parameter("version", int, "With path: that version's number."),
]
ERRORS = {
    400: OpenApiResponse(description="A field is invalid: `errors` names it"),
    404: OpenApiResponse(description="No such path, or no such version of it, in the key's workspace"),
}


def _path_fields() -> dict:
    return {
        "path": serializers.CharField(required=False, max_length=80),
        "version": serializers.IntegerField(required=False, min_value=1, max_value=MAX_NUMBER),
    }


def _needs_path(attrs: dict) -> dict:
    if "version" in attrs and "path" not in attrs:
        raise serializers.ValidationError({"version": "A version needs its path (path=)."})
    return attrs


class ActivationInputSerializer(RangeInputSerializer):
    def get_fields(self):
        return {**super().get_fields(), **_path_fields()}

    def validate(self, attrs):
        return _needs_path(super().validate(attrs))


class StuckInputSerializer(serializers.Serializer):
    def get_fields(self):
        return _path_fields()

    def validate(self, attrs):
        return _needs_path(attrs)


def _chosen(request, data: dict) -> tuple[dict, tuple[int, ...] | None]:
    """The path filter as echoed ({path, version}) and the path version ids it selects."""
    if "path" not in data:
        return {}, None
    path = _path(request, data["path"])
    if "version" in data:
        version = _version(request, path, data["version"])
        return {"path": path.key, "version": version.number}, (version.pk,)
    versions = paths_selectors.path_versions(workspace=request.user.workspace, path=path)
    return {"path": path.key}, tuple(versions.values_list("pk", flat=True))


def _day(day) -> dict:
    return {
        "day": day.day,
        "enrolled": day.enrolled,
        "mature": day.enrolled if day.mature else 0,
        "activated": day.activated,
        "pending": 0 if day.mature else day.enrolled,
        "activation_rate": day.activation_rate,
        "time_to_activation_p50_hours": day.tta_p50_hours,
        "time_to_activation_p90_hours": day.tta_p90_hours,
    }


class ActivationApi(_AnalyticsApi):
    """Activation per enrolment day and the time-to-activation distribution over the range, as
    the Product dashboard shows them (docs/analytics.md)."""

    @extend_schema(
        operation_id="analytics_activation",
        parameters=[*PATH_PARAMETERS, *RANGE_PARAMETERS],
        responses={
            200: OpenApiResponse(
                description="`days` (enrolled, mature, activated, pending, activation_rate, "
                "time to activation p50/p90 hours per enrolment day) and `time_to_activation` "
                "(log buckets with lower/upper hours and counts, p50, p90)"
            ),
            **ERRORS,
        },
    )
    def get(self, request):
        serializer = ActivationInputSerializer(data=_given(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        chosen, path_version_ids = _chosen(request, data)
        segments = {name: data[name] for name in SEGMENTS if name in data}
        workspace = request.user.workspace
        query = RollupQuery(workspace, data["from"], data["to"], path_version_ids, segments)
        distribution = activation_distribution(query)
        return Response(
            {
                "from": data["from"],
                "to": data["to"],
                **chosen,
                "segments": segments,
                "activation_window_days": activation_window_days(workspace=workspace),
                "days": [_day(day) for day in daily_trend(query)],
                "time_to_activation": {
                    "activated": distribution.activated,
                    "p50_hours": distribution.p50_hours,
                    "p90_hours": distribution.p90_hours,
                    "buckets": [
                        {"lower_hours": b.lower_hours, "upper_hours": b.upper_hours, "count": b.count}
                        for b in distribution.buckets
                    ],
                },
                "rollups_refreshed_at": _rollups_refreshed_at(request),
            }
        )


def _stuck_step(share) -> dict:
    median = share.median_time_in_step
    return {
        "path": share.path_key,
        "version": share.path_version_number,
        "step": share.step_key,
        "position": share.step_number,
        "title": share.step_title,
        "on_step": share.on_step,
        "stuck": share.stuck,
        "share_of_stuck": share.share_of_stuck,
        "median_seconds_in_step": median.total_seconds() if median is not None else None,
    }


class StuckApi(_AnalyticsApi):
    """Stuck enrollments now, per path version and step, the most stuck first: the numbers of the
    stuck list and the Overview. `share_of_stuck` is of every stuck enrollment of the workspace."""

    @extend_schema(
        operation_id="analytics_stuck",
        parameters=PATH_PARAMETERS,
        responses={
            200: OpenApiResponse(
                description="`steps` with a stuck enrollment (count, share of all stuck, position, "
                "title, median seconds in step) and `total_stuck`"
            ),
            **ERRORS,
        },
    )
    def get(self, request):
        serializer = StuckInputSerializer(data=_given(request))
        serializer.is_valid(raise_exception=True)
        chosen, path_version_ids = _chosen(request, serializer.validated_data)
        every = stuck_selectors.stuck_shares_by_step(workspaces=[request.user.workspace])
        steps = [
            share
            for share in every
            if share.stuck and (path_version_ids is None or share.path_version_id in path_version_ids)
        ]
        return Response(
            {
                **chosen,
                "total_stuck": sum(share.stuck for share in every),
                "steps": [_stuck_step(share) for share in steps],
            }
        )


class OpsInputSerializer(RangeInputSerializer):
    def get_fields(self):
        fields = {name: field for name, field in super().get_fields().items() if name in ("from", "to")}
        return {**fields, "bucket": serializers.ChoiceField(choices=["minute", "hour"], required=False)}


class OpsApi(_AnalyticsApi):
    """The key's workspace's part of the Ops dashboard: events received per minute (last hour) or
    per hour (last 24 hours), the nudge pipeline of the nudges created in the range (by status,
    still in the pipeline, dead letters, in doubt) and how fresh the rollups are."""

    @extend_schema(
        operation_id="analytics_ops",
        parameters=[
            *[parameter for parameter in RANGE_PARAMETERS if parameter.name in ("from", "to")],
            _parameter("bucket", str, "minute (the last hour, the default) or hour (the last 24 hours)."),
        ],
        responses={
            200: OpenApiResponse(
                description="`ingestion` (buckets with start, events, events_per_minute), "
                "`nudge_pipeline` (by_status, in_pipeline, dead_letters, in_doubt) and `rollups` "
                "(refreshed_at, age_seconds, stale)"
            ),
            400: ERRORS[400],
        },
    )
    def get(self, request):
        serializer = OpsInputSerializer(data=_given(request))
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        workspace = request.user.workspace
        buckets = ops_queries.ingestion_rate(workspace=workspace, bucket=data.get("bucket", "minute"))
        pipeline = ops_queries.nudge_pipeline(workspace=workspace, date_from=data["from"], date_to=data["to"])
        [freshness] = ops_queries.rollup_freshness(workspaces=[workspace])
        return Response(
            {
                "from": data["from"],
                "to": data["to"],
                "ingestion": [
                    {"start": b.start, "events": b.events, "events_per_minute": round(b.events_per_minute, 3)}
                    for b in buckets
                ],
                "nudge_pipeline": {
                    "by_status": pipeline.by_status,
                    "in_pipeline": pipeline.in_pipeline,
                    "dead_letters": pipeline.dead_letters,
                    "in_doubt": pipeline.in_doubt,
                },
                "rollups": {
                    "refreshed_at": freshness.refreshed_at,
                    "age_seconds": freshness.age.total_seconds() if freshness.age is not None else None,
                    "stale": freshness.stale,
                },
            }
        )
