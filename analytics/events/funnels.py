"""Event funnels (as PostHog's): per step the users who reached it, conversion from the first
and from the previous step, and the median and p90 seconds from the previous step; optionally
per value of one end-user trait (the top ten by first-step users, the rest as "other")."""

from datetime import timedelta
from typing import Any

from analytics.events import raw
from analytics.events.funnel_sql import ALL, OTHER, FunnelQuery, funnel_statement

ORDERS = ("ordered", "strict", "any")
NO_VALUE = "(none)"


def _ratio(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def _seconds(value: Any) -> float | None:
    return None if value is None else round(float(value), 3)


def _steps_out(query: FunnelQuery, reached: dict[int, tuple]) -> list[dict[str, Any]]:
    """The per-step table of one bucket; `reached` maps a step number to (users, p50, p90)."""
    rows = []
    first = reached.get(1, (0, None, None))[0]
    previous = first
    for number, step in enumerate(query.steps, start=1):
        users, median, p90 = reached.get(number, (0, None, None))
        rows.append(
            {
                "step": number,
                "event": step.event,
                "count": users,
                "conversion_from_first": _ratio(users, first),
                "conversion_from_previous": _ratio(users, previous) if number > 1 else _ratio(users, first),
                "median_seconds_from_previous": _seconds(median) if number > 1 else None,
                "p90_seconds_from_previous": _seconds(p90) if number > 1 else None,
            }
        )
        previous = users
    return rows


def _shape(query: FunnelQuery, rows: list[tuple]) -> dict[str, Any]:
    by_bucket: dict[str, dict[int, tuple]] = {}
    for bucket, step, users, median, p90 in rows:
        by_bucket.setdefault(bucket, {})[int(step)] = (int(users), median, p90)
    overall = by_bucket.pop(ALL, {})
    if query.breakdown is None:
        breakdown = None
    else:
        values = sorted(
            by_bucket.items(), key=lambda item: (item[0] == OTHER, -item[1].get(1, (0,))[0], item[0])
        )
        breakdown = {
            "trait": query.breakdown,
            "values": [
                {
                    "value": "other" if bucket == OTHER else (bucket or NO_VALUE),
                    "steps": _steps_out(query, reached),
                }
                for bucket, reached in values
            ],
        }
    return {"steps": _steps_out(query, overall), "breakdown": breakdown}


def parameters_of(query: FunnelQuery) -> dict[str, Any]:
    """The normalised parameters: the cache key of the result, and echoed in it."""
    return {
        "steps": [{"event": step.event, "where": step.where} for step in query.steps],
        "window_seconds": query.window_seconds,
        "order": query.order,
        "from": query.start.date().isoformat(),
        "to": (query.end - timedelta(days=1)).date().isoformat(),
        "segment": dict(sorted(query.segment.items())),
        "breakdown": query.breakdown,
    }


def event_funnel(query: FunnelQuery) -> dict[str, Any]:
    """The funnel's result, fresh, or the last one of the same parameters marked stale when the
    query times out; raw.RawQueryUnavailable when it times out with none cached."""
    sql, params = funnel_statement(query)

    def compute(cursor) -> dict[str, Any]:
        cursor.execute(sql, params)
        return _shape(query, cursor.fetchall())

    return raw.cached_or_fresh(
        workspace=query.workspace, kind="funnel", parameters=parameters_of(query), compute=compute
    )
