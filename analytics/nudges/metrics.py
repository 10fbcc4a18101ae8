"""nudge_send_rate, nudge_open_rate and nudge_conversion_rate, as decided for issue 14.

- nudge_send_rate: nudges created in range that were sent (sent_at set) / nudges created in range.
- nudge_open_rate: nudges sent in range (by sent_at) that were opened or clicked (a click implies
  an open) / nudges sent in range.
- nudge_conversion_rate: nudges sent in range with converted_at set / nudges sent in range.

A range is [date_from, date_to] in UTC days, date_to inclusive. A zero denominator gives None.
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from nudges import selectors
from tenancy.models import Workspace

# The metric definitions' segment names that are spelled differently here.
SEGMENT_FIELDS = {"path": "path_key", "template": "template_id", "trigger": "trigger_id"}


@dataclass(frozen=True)
class NudgeQuery:
    """A workspace, a range of UTC days, and segment filters (None: not filtered). Path filters
    follow the nudge's enrollment: a nudge without one matches no path."""

    workspace: Workspace
    date_from: date
    date_to: date
    channel: str | None = None
    template_id: int | None = None
    variant: str | None = None
    trigger_id: int | None = None
    path_key: str | None = None
    path_version: int | None = None
    persona: str | None = None
    signup_source: str | None = None
    company_size: str | None = None
    use_case: str | None = None

    @classmethod
    def from_segments(
        cls, *, workspace: Workspace, date_from: date, date_to: date, segments: dict[str, Any]
    ) -> "NudgeQuery":
        """From the metric definitions' segment names (path, path_version, persona, ..., channel,
        variant: analytics.metrics.definitions.NUDGE_SEGMENTS); unknown names are a ValueError."""
        renamed = {SEGMENT_FIELDS.get(name, name): value for name, value in segments.items()}
        unknown = set(renamed) - (set(cls.__dataclass_fields__) - {"workspace", "date_from", "date_to"})
        if unknown:
            raise ValueError(f"unknown nudge segment: {', '.join(sorted(unknown))}")
        return cls(workspace=workspace, date_from=date_from, date_to=date_to, **renamed)

    def filters(self) -> dict[str, Any]:
        names = ("channel", "template_id", "variant", "trigger_id", "path_key", "path_version")
        names += ("persona", "signup_source", "company_size", "use_case")
        return {name: getattr(self, name) for name in names}


@dataclass(frozen=True)
class RateValue:
    value: float | None
    numerator: int
    denominator: int

    @classmethod
    def of(cls, numerator: int, denominator: int) -> "RateValue":
        return cls(numerator / denominator if denominator else None, numerator, denominator)


def created_in_range(query: NudgeQuery, group_by: tuple[str, ...] = ()) -> list[selectors.NudgeOutcomeCounts]:
    """Counts of the nudges created in the query's range (the send rate's population)."""
    return selectors.nudge_outcome_counts(
        workspace=query.workspace,
        created_from=query.date_from,
        created_to=query.date_to,
        group_by=group_by,
        **query.filters(),
    )


def sent_in_range(query: NudgeQuery, group_by: tuple[str, ...] = ()) -> list[selectors.NudgeOutcomeCounts]:
    """Counts of the nudges sent in the query's range (the open and conversion rates' population)."""
    return selectors.nudge_outcome_counts(
        workspace=query.workspace,
        sent_from=query.date_from,
        sent_to=query.date_to,
        group_by=group_by,
        **query.filters(),
    )


def nudge_send_rate(query: NudgeQuery) -> RateValue:
    [counts] = created_in_range(query)
    return RateValue.of(counts.sent, counts.created)


def nudge_open_rate(query: NudgeQuery) -> RateValue:
    [counts] = sent_in_range(query)
    return RateValue.of(counts.opened, counts.sent)


def nudge_conversion_rate(query: NudgeQuery) -> RateValue:
    [counts] = sent_in_range(query)
    return RateValue.of(counts.converted, counts.sent)


NUDGE_METRICS: dict[str, Callable[[NudgeQuery], RateValue]] = {
    "nudge_send_rate": nudge_send_rate,
    "nudge_open_rate": nudge_open_rate,
    "nudge_conversion_rate": nudge_conversion_rate,
}
