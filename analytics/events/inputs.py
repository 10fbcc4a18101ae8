"""Validation of the funnel and cohort requests: each bad field is a 400 that names it."""

from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from django.utils import timezone
from rest_framework import serializers

from analytics.events.cohorts import BY, MAX_WEEKS, CohortQuery
from analytics.events.funnels import ORDERS
from tenancy.models import Workspace
from tenancy.selectors import SEGMENT_TRAITS

MIN_STEPS, MAX_STEPS = 2, 10
MAX_RANGE_DAYS = 400
DEFAULT_RANGE_DAYS = 30
DEFAULT_WINDOW_SECONDS = 14 * 24 * 3600
MAX_WINDOW_SECONDS = 365 * 24 * 3600
FIRST_DAY, LAST_DAY = date(2000, 1, 1), date(9990, 12, 31)  # room for a window after `to`
MAX_WHERE_KEYS, MAX_IN_VALUES = 10, 50


def _choice(name: str, choices: tuple[str, ...], **kwargs) -> serializers.ChoiceField:
    return serializers.ChoiceField(
        choices=choices,
        error_messages={"invalid_choice": f'"{{input}}" is not a valid {name}: one of {", ".join(choices)}.'},
        **kwargs,
    )


def _is_scalar(value: Any) -> bool:
    if isinstance(value, str):
        return _storable(value)
    return value is None or (isinstance(value, int | float | bool) and abs(value) < 2**63)


def _storable(text: str) -> bool:
    """No NUL (PostgreSQL's text and jsonb refuse it) and no lone surrogate (not UTF-8)."""
    if "\x00" in text:
        return False
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


class StepSerializer(serializers.Serializer):
    event = serializers.CharField(max_length=255)
    where = serializers.DictField(required=False, default=dict)

    def validate_where(self, where: dict) -> dict:
        if len(where) > MAX_WHERE_KEYS:
            raise serializers.ValidationError(f"At most {MAX_WHERE_KEYS} property filters per step.")
        for key, value in where.items():
            if not key or len(key) > 200 or not _storable(key):
                raise serializers.ValidationError("A property name is 1 to 200 characters of text.")
            if isinstance(value, list):
                if not value or len(value) > MAX_IN_VALUES or not all(_is_scalar(item) for item in value):
                    raise serializers.ValidationError(
                        f"{key}: a list means one of its values: 1 to {MAX_IN_VALUES} plain values."
                    )
            elif not _is_scalar(value):
                raise serializers.ValidationError(
                    f"{key}: a plain value (text, number, true/false) or a list."
                )
        return where


def _range(attrs: dict) -> tuple[datetime, datetime]:
    """[start, end) in UTC from the `from` and `to` days (`to` inclusive), or a 400."""
    for name in ("from", "to"):
        if name in attrs and not FIRST_DAY <= attrs[name] <= LAST_DAY:
            raise serializers.ValidationError({name: f"Must be between {FIRST_DAY} and {LAST_DAY}."})
    date_to = attrs.get("to") or timezone.now().date()
    date_from = attrs.get("from") or date_to - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if date_from > date_to:
        raise serializers.ValidationError({"to": f"{date_to} is before from ({date_from})."})
    if (date_to - date_from).days + 1 > MAX_RANGE_DAYS:
        raise serializers.ValidationError(
            {"from": f"The range spans more than {MAX_RANGE_DAYS} days (the retention)."}
        )
    start = datetime.combine(date_from, time.min, tzinfo=UTC)
    return start, start + timedelta(days=(date_to - date_from).days + 1)


def _segment_fields() -> dict[str, serializers.Field]:
    return {name: serializers.CharField(required=False, max_length=100) for name in SEGMENT_TRAITS}


class FunnelInputSerializer(serializers.Serializer):
    def get_fields(self):
        return {
            "steps": StepSerializer(many=True),
            "window_seconds": serializers.IntegerField(
                required=False, default=DEFAULT_WINDOW_SECONDS, min_value=1, max_value=MAX_WINDOW_SECONDS
            ),
            "order": _choice("order", ORDERS, required=False, default="ordered"),
            "from": serializers.DateField(required=False),
            "to": serializers.DateField(required=False),
            "breakdown": _choice("breakdown", SEGMENT_TRAITS, required=False, allow_null=True, default=None),
            **_segment_fields(),
        }

    def validate_steps(self, steps: list) -> list:
        if not MIN_STEPS <= len(steps) <= MAX_STEPS:
            raise serializers.ValidationError(
                f"A funnel has {MIN_STEPS} to {MAX_STEPS} steps; this one has {len(steps)}."
            )
        return steps

    def validate(self, attrs):
        start, end = _range(attrs)
        return {**attrs, "start": start, "end": end}


class FunnelQueryStringSerializer(FunnelInputSerializer):
    """GET: `steps=a,b,c` (event names, no property filters) for a shareable URL."""

    def to_internal_value(self, data):
        values = {key: data.get(key) for key in data}
        names = [name.strip() for name in (values.get("steps") or "").split(",") if name.strip()]
        values["steps"] = [{"event": name} for name in names]
        return super().to_internal_value(values)


class CohortInputSerializer(serializers.Serializer):
    def get_fields(self):
        return {
            "by": _choice("by", BY, required=False, default="signup"),
            "event": serializers.CharField(required=False, max_length=255),
            "weeks": serializers.IntegerField(required=False, default=8, min_value=1, max_value=MAX_WEEKS),
            "from": serializers.DateField(required=False),
            "to": serializers.DateField(required=False),
            **_segment_fields(),
        }

    def validate(self, attrs):
        start, end = _range(attrs)
        return {**attrs, "start": start, "end": end}


def segment_of(data: dict) -> dict[str, str]:
    return {name: data[name] for name in SEGMENT_TRAITS if name in data}


def cohort_query(*, workspace: Workspace, data: dict) -> CohortQuery:
    """The cohort query of a validated CohortInputSerializer's data (the API and the dashboard)."""
    return CohortQuery(
        workspace=workspace,
        by=data["by"],
        weeks=data["weeks"],
        start=data["start"],
        end=data["end"],
        event=data.get("event"),
        segment=segment_of(data),
    )
