"""GET /api/v1/analytics/nudges: nudge counts and rates of the key's workspace over a range of
UTC days, optionally per channel, template, variant, trigger or day, and filtered by segment.

Secret keys only (a write key is public). Bad input is a 400 naming the field; an unknown path
a 404.
"""

from datetime import date, timedelta

from django.utils import timezone
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from analytics.nudges.breakdown import BREAKDOWNS, NudgeRates, nudge_breakdown, nudge_totals
from analytics.nudges.metrics import NudgeQuery, RateValue
from guardrails.models import Channel
from paths import selectors as paths_selectors
from tenancy.authentication import ApiKeyAuthentication, HasScope
from tenancy.models import ApiKey

MAX_RANGE_DAYS = 400
DEFAULT_RANGE_DAYS = 30
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(9999, 12, 30)  # day arithmetic stays in range
MAX_ID, MAX_NUMBER = 2**63 - 1, 2**31 - 1  # bigint ids, PostgreSQL integer version numbers
SEGMENTS = ("persona", "signup_source", "company_size", "use_case")


def _choice(name: str, choices: list[str]) -> serializers.ChoiceField:
    return serializers.ChoiceField(
        choices=choices,
        required=False,
        error_messages={"invalid_choice": f'"{{input}}" is not a valid {name}: one of {", ".join(choices)}.'},
    )


class NudgeAnalyticsInputSerializer(serializers.Serializer):
    def get_fields(self):
        return {
            "from": serializers.DateField(required=False),
            "to": serializers.DateField(required=False),
            "by": _choice("by", list(BREAKDOWNS)),
            "channel": _choice("channel", list(Channel.values)),
            "template": serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID),
            "variant": serializers.CharField(required=False, max_length=20),
            "trigger": serializers.IntegerField(required=False, min_value=1, max_value=MAX_ID),
            "path": serializers.CharField(required=False, max_length=80),
            "path_version": serializers.IntegerField(required=False, min_value=1, max_value=MAX_NUMBER),
            **{name: serializers.CharField(required=False, max_length=100) for name in SEGMENTS},
        }

    def validate(self, attrs):
        for name in ("from", "to"):
            if name in attrs and not FIRST_DAY <= attrs[name] <= LAST_DAY:
                raise serializers.ValidationError({name: f"Must be between {FIRST_DAY} and {LAST_DAY}."})
        today = timezone.now().date()
        date_to = attrs.get("to") or today
        date_from = attrs.get("from") or date_to - timedelta(days=DEFAULT_RANGE_DAYS - 1)
        if date_from > date_to:
            raise serializers.ValidationError({"to": f"{date_to} is before from ({date_from})."})
        if (date_to - date_from).days + 1 > MAX_RANGE_DAYS:
            raise serializers.ValidationError(
                {"from": f"The range spans more than {MAX_RANGE_DAYS} days (the retention)."}
            )
        if "path_version" in attrs and "path" not in attrs:
            raise serializers.ValidationError({"path_version": "A path version needs its path (path=)."})
        return {**attrs, "from": date_from, "to": date_to}


def _rate(rate: RateValue) -> dict:
    return {"value": rate.value, "numerator": rate.numerator, "denominator": rate.denominator}


def _populations(rates: NudgeRates) -> dict:
    created, sent = rates.created, rates.sent
    return {
        "created_in_range": {
            "created": created.created,
            "sent": created.sent,
            "suppressed": created.suppressed,
            "failed": created.failed,
            "send_rate": rates.send_rate.value,
        },
        "sent_in_range": {
            "sent": sent.sent,
            "delivered": sent.delivered,
            "delivery_unknown": sent.delivery_unknown,
            "opened": sent.opened,
            "clicked": sent.clicked,
            "converted": sent.converted,
            "bounced": sent.bounced,
            "delivery_rate": rates.delivery_rate.value,
            "open_rate": rates.open_rate.value,
            "click_rate": rates.click_rate.value,
            "conversion_rate": rates.conversion_rate.value,
        },
    }


def _query(request, data: dict) -> NudgeQuery:
    workspace = request.user.workspace
    if "path" in data and paths_selectors.path_get(workspace=workspace, key=data["path"]) is None:
        raise exceptions.NotFound(f"No such path: {data['path']!r}.")
    return NudgeQuery(
        workspace=workspace,
        date_from=data["from"],
        date_to=data["to"],
        channel=data.get("channel"),
        template_id=data.get("template"),
        variant=data.get("variant"),
        trigger_id=data.get("trigger"),
        path_key=data.get("path"),
        path_version=data.get("path_version"),
        **{name: data.get(name) for name in SEGMENTS},
    )


def _parameter(name: str, kind: type, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, kind, OpenApiParameter.QUERY, required=False, description=description)


PARAMETERS = [
    _parameter("from", date, f"First UTC day (default: {DEFAULT_RANGE_DAYS} days to `to`)."),
    _parameter("to", date, f"Last UTC day, inclusive (default: today); at most {MAX_RANGE_DAYS} days."),
    _parameter("by", str, f"Rows per {', '.join(BREAKDOWNS)}; none: totals only."),
    _parameter("channel", str, f"One of {', '.join(Channel.values)}."),
    _parameter("template", int, "A nudge template's id."),
    _parameter("variant", str, "A template version's variant, e.g. A."),
    _parameter("trigger", int, "A trigger's id."),
    _parameter("path", str, "A path key: nudges whose enrollment is on that path."),
    _parameter("path_version", int, "With path: that version's number."),
    *[_parameter(name, str, f"End users whose {name} is this.") for name in SEGMENTS],
]


class NudgeAnalyticsApi(APIView):
    """Sends, deliveries, opens, clicks and conversions of the workspace's nudges."""

    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [HasScope]
    required_scope = ApiKey.Scope.SERVER

    @extend_schema(
        operation_id="analytics_nudges",
        parameters=PARAMETERS,
        responses={
            200: OpenApiResponse(
                description="`totals` (counts of both populations and the three metrics with their "
                "numerator and denominator) and `rows`, one per value of `by`"
            ),
            400: OpenApiResponse(description="A field is invalid: `errors` names it"),
            404: OpenApiResponse(description="No such path in the key's workspace"),
        },
    )
    def get(self, request):
        serializer = NudgeAnalyticsInputSerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        query = _query(request, data)
        totals = nudge_totals(query)
        by = data.get("by")
        rows = nudge_breakdown(query, by) if by else []
        return Response(
            {
                "from": query.date_from,
                "to": query.date_to,
                "by": by,
                "totals": {
                    **_populations(totals),
                    "nudge_send_rate": _rate(totals.send_rate),
                    "nudge_open_rate": _rate(totals.open_rate),
                    "nudge_conversion_rate": _rate(totals.conversion_rate),
                },
                "rows": [{**row.group, **_populations(row)} for row in rows],
            }
        )
