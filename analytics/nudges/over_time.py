"""Nudge rates per channel, template or variant, per UTC day: the series the nudges dashboard
draws. Counted by the one rule (nudges.selectors.nudge_outcome_counts, through created_in_range
and sent_in_range), grouped by the dimension and the day: two GROUP BY queries per dimension.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from analytics.nudges.breakdown import NudgeRates
from analytics.nudges.metrics import NudgeQuery, created_in_range, sent_in_range
from nudges.selectors import NudgeOutcomeCounts

DIMENSIONS = ("channel", "template", "variant")


@dataclass(frozen=True)
class NudgeSeries:
    """One value of the dimension (e.g. channel "email"), its label, and its rates per day."""

    value: Any
    label: str
    days: list[tuple[date, NudgeRates]]


def _label(by: str, value: Any, group: dict[str, Any]) -> str:
    if value in (None, ""):
        return "(none)"
    return str(group.get(f"{by}_name") or value)


def nudge_rates_over_time(query: NudgeQuery, by: str) -> list[NudgeSeries]:
    """Per value of `by` (channel, template or variant) that has nudges in range, every day of the
    range with its rates: the send rate over the nudges created that day, the delivery, open,
    click and conversion rates over those sent that day (as the breakdown per day counts them).
    Values sorted by their label (a template's name), none last."""
    if by not in DIMENSIONS:
        raise ValueError(f"unknown dimension: {by}")
    created: dict[tuple[Any, date], NudgeOutcomeCounts] = {}
    sent: dict[tuple[Any, date], NudgeOutcomeCounts] = {}
    labels: dict[Any, dict[str, Any]] = {}
    for row in created_in_range(query, (by, "created_day")):
        created[row.group[by], row.group["created_day"]] = row
        labels.setdefault(row.group[by], row.group)
    for row in sent_in_range(query, (by, "sent_day")):
        sent[row.group[by], row.group["sent_day"]] = row
        labels.setdefault(row.group[by], row.group)
    span = (query.date_to - query.date_from).days + 1
    days = [query.date_from + timedelta(days=offset) for offset in range(span)]
    empty = NudgeOutcomeCounts(group={})
    names = {value: _label(by, value, group) for value, group in labels.items()}
    values = sorted(labels, key=lambda value: (value in (None, ""), names[value].lower(), str(value)))
    return [
        NudgeSeries(
            value=value,
            label=names[value],
            days=[
                (
                    day,
                    NudgeRates(
                        group={by: value, "day": day.isoformat()},
                        created=created.get((value, day), empty),
                        sent=sent.get((value, day), empty),
                    ),
                )
                for day in days
            ],
        )
        for value in values
    ]
