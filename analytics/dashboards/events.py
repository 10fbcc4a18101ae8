"""The product dashboard's raw-event sections, run only when the admin submits their forms:
cohort retention (a heat map) and the event funnel builder, through analytics.events' services
(validated by its serializers, statement timeout, last result marked stale on timeout)."""

from typing import Any

from django.http import HttpRequest

from analytics.dashboards import tables as t
from analytics.dashboards.filters import DashboardFilters
from analytics.events import inputs
from analytics.events.cohorts import cohort_retention
from analytics.events.funnel_sql import FunnelQuery
from analytics.events.funnel_sql import FunnelStep as EventStep
from analytics.events.funnels import event_funnel
from analytics.events.raw import RawQueryUnavailable
from analytics.events.volumes import TOP_NAMES, event_names_by_volume

Section = tuple[list[t.Table], dict[str, str], dict[str, Any]]
HOUR = 3600


def _range_and_segments(filters: DashboardFilters) -> dict[str, str]:
    return {"from": filters.date_from.isoformat(), "to": filters.date_to.isoformat(), **filters.segments}


def _errors(prefix: str, detail: Any) -> dict[str, str]:
    """A serializer's errors as {field: message}, the field named as the form names it."""
    if isinstance(detail, dict):
        return {f"{prefix}{name}": " ".join(map(str, _flat(value))) for name, value in detail.items()}
    return {prefix.rstrip("_"): " ".join(map(str, _flat(detail)))}


def _flat(value: Any) -> list:
    if isinstance(value, dict):
        return [item for each in value.values() for item in _flat(each)]
    if isinstance(value, list):
        return [item for each in value for item in _flat(each)]
    return [value]


def _state(result: dict, values: dict) -> dict[str, Any]:
    return {
        "asked": True,
        "values": values,
        "stale": result.get("stale", False),
        "stale_age_seconds": result.get("stale_age_seconds", 0),
    }


def cohort_table(request: HttpRequest, filters: DashboardFilters) -> Section:
    values = {name: request.GET.get(f"cohort_{name}", "").strip() for name in ("by", "event", "weeks")}
    if not values["by"]:
        return [], {}, {"asked": False, "values": values}
    data = {**_range_and_segments(filters), **{name: value for name, value in values.items() if value}}
    serializer = inputs.CohortInputSerializer(data=data)
    if not serializer.is_valid():
        return [], _errors("cohort_", serializer.errors), {"asked": True, "values": values}
    valid = serializer.validated_data
    query = inputs.cohort_query(workspace=filters.workspace, data=valid)
    try:
        result = cohort_retention(query)
    except RawQueryUnavailable as error:
        return [], {"cohort": error.reason}, {"asked": True, "values": values}
    columns = [t.Column("week_start", "cohort week", t.TEXT), t.Column("size", "users")]
    columns += [t.Column(f"week_{since}", f"week {since}", t.SHARE) for since in range(valid["weeks"] + 1)]
    rows = [[cohort["week_start"], cohort["size"], *cohort["retention"]] for cohort in result["cohorts"]]
    table = t.Table(
        "cohorts",
        f"Retention by {valid['by']} week" + (f" (did {valid['event']})" if valid.get("event") else ""),
        columns,
        rows,
        note="Share of the cohort active in each week since its own; a dash for weeks not begun yet.",
    )
    return [table], {}, _state(result, values)


FUNNEL_FIELDS = ("steps", "window_hours", "order", "breakdown")


def _funnel_rows(steps: list[dict]) -> list[list[Any]]:
    return [
        [
            step["step"],
            step["event"],
            step["count"],
            step["conversion_from_first"],
            step["conversion_from_previous"],
            step["median_seconds_from_previous"],
            step["p90_seconds_from_previous"],
        ]
        for step in steps
    ]


FUNNEL_COLUMNS = [
    t.Column("step", "step"),
    t.Column("event", "event", t.TEXT),
    t.Column("count", "users"),
    t.Column("conversion_from_first", "conversion from first", t.RATIO),
    t.Column("conversion_from_previous", "conversion from previous", t.RATIO),
    t.Column("median_seconds", "median time from previous", t.SECONDS),
    t.Column("p90_seconds", "p90 time from previous", t.SECONDS),
]


def _funnel_data(values: dict[str, str], filters: DashboardFilters) -> dict[str, Any]:
    data: dict[str, Any] = {**_range_and_segments(filters), "steps": values["steps"]}
    if values["order"]:
        data["order"] = values["order"]
    if values["breakdown"]:
        data["breakdown"] = values["breakdown"]
    if values["window_hours"]:
        hours = values["window_hours"]
        data["window_seconds"] = int(hours) * HOUR if hours.isdigit() and len(hours) < 9 else hours
    return data


def event_names_table(filters: DashboardFilters) -> t.Table:
    """The event names sent in the range and how many of each (EventDayRollup), for the builder."""
    names = event_names_by_volume(
        workspace=filters.workspace, first_day=filters.date_from, last_day=filters.date_to
    )
    return t.Table(
        "event_names",
        "Events sent in the range",
        [t.Column("event", "event", t.TEXT), t.Column("events", "events")],
        [list(row) for row in names],
        note=f"The {TOP_NAMES} most frequent names by event timestamp, from the event rollups "
        "(refreshed every five minutes); name 2 to 10 of them above to build a funnel.",
    )


def event_funnel_section(request: HttpRequest, filters: DashboardFilters) -> Section:
    values = {name: request.GET.get(f"funnel_{name}", "").strip() for name in FUNNEL_FIELDS}
    if not values["steps"]:
        return [event_names_table(filters)], {}, {"asked": False, "values": values}
    serializer = inputs.FunnelQueryStringSerializer(data=_funnel_data(values, filters))
    if not serializer.is_valid():
        errors = _errors("funnel_", serializer.errors)
        if "funnel_window_seconds" in errors:
            errors["funnel_window_hours"] = "A whole number of hours, 1 to 8760."
            del errors["funnel_window_seconds"]
        return [], errors, {"asked": True, "values": values}
    valid = serializer.validated_data
    query = FunnelQuery(
        workspace=filters.workspace,
        steps=tuple(EventStep(event=step["event"], where={}) for step in valid["steps"]),
        window_seconds=valid["window_seconds"],
        order=valid["order"],
        start=valid["start"],
        end=valid["end"],
        segment=inputs.segment_of(valid),
        breakdown=valid.get("breakdown"),
    )
    try:
        result = event_funnel(query)
    except RawQueryUnavailable as error:
        return [], {"funnel": error.reason}, {"asked": True, "values": values}
    found = [
        t.Table(
            "event_funnel",
            "Event funnel: " + " → ".join(step.event for step in query.steps),
            FUNNEL_COLUMNS,
            _funnel_rows(result["steps"]),
            chart=t.Chart("event", ("count",), "bar", "Users reaching each event of the funnel"),
        )
    ]
    for number, each in enumerate((result.get("breakdown") or {}).get("values", []), start=1):
        found.append(
            t.Table(
                f"event_funnel_{number}",
                f"{query.breakdown} = {each['value']}",
                FUNNEL_COLUMNS,
                _funnel_rows(each["steps"]),
            )
        )
    return [*found, event_names_table(filters)], {}, _state(result, values)
