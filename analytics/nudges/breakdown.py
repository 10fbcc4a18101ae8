"""Nudge rates per channel, template, variant, trigger, or UTC day (for charts over time).

Each row holds two populations, as the metrics define them: the nudges created in range (the
send rate's) and the nudges sent in range (delivery, open, click and conversion rates'). Two
GROUP BY queries per breakdown, whatever the number of rows.
"""

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from analytics.nudges.metrics import NudgeQuery, RateValue, created_in_range, sent_in_range
from nudges.selectors import NudgeOutcomeCounts

# The API's `by` -> the selector's group key for each population (a day is the created or the sent day).
BREAKDOWNS: dict[str, tuple[str, str]] = {
    "channel": ("channel", "channel"),
    "template": ("template", "template"),
    "variant": ("variant", "variant"),
    "trigger": ("trigger", "trigger"),
    "day": ("created_day", "sent_day"),
}


@dataclass(frozen=True)
class NudgeRates:
    """One group's counts in both populations, and its rates (None on a zero denominator)."""

    group: dict[str, Any]
    created: NudgeOutcomeCounts
    sent: NudgeOutcomeCounts

    @property
    def send_rate(self) -> RateValue:
        return RateValue.of(self.created.sent, self.created.created)

    @property
    def delivery_rate(self) -> RateValue:
        """Delivered among the sends whose delivery is reported at all (delivery_unknown left out)."""
        return RateValue.of(self.sent.delivered, self.sent.sent - self.sent.delivery_unknown)

    @property
    def open_rate(self) -> RateValue:
        return RateValue.of(self.sent.opened, self.sent.sent)

    @property
    def click_rate(self) -> RateValue:
        return RateValue.of(self.sent.clicked, self.sent.sent)

    @property
    def conversion_rate(self) -> RateValue:
        return RateValue.of(self.sent.converted, self.sent.sent)


def nudge_totals(query: NudgeQuery) -> NudgeRates:
    [created] = created_in_range(query)
    [sent] = sent_in_range(query)
    return NudgeRates(group={}, created=created, sent=sent)


def _key(group_by: str, row: NudgeOutcomeCounts) -> Any:
    return row.group[group_by]


def _sort_key(value: Any) -> tuple[bool, Any]:
    return (value is None or value == "", value if value is not None else "")


def nudge_breakdown(query: NudgeQuery, by: str) -> list[NudgeRates]:
    """The query's rates per value of `by` (a key of BREAKDOWNS), sorted by that value (none
    last). Per day, every day of the range has its row, zero when nothing happened."""
    created_key, sent_key = BREAKDOWNS[by]
    created_rows = {_key(created_key, row): row for row in created_in_range(query, (created_key,))}
    sent_rows = {_key(sent_key, row): row for row in sent_in_range(query, (sent_key,))}
    if by == "day":
        span = (query.date_to - query.date_from).days + 1
        keys: list[Any] = [query.date_from + timedelta(days=offset) for offset in range(span)]
    else:
        keys = sorted(created_rows.keys() | sent_rows.keys(), key=_sort_key)
    return [_row(by, key, created_rows.get(key), sent_rows.get(key)) for key in keys]


def _row(
    by: str, key: Any, created: NudgeOutcomeCounts | None, sent: NudgeOutcomeCounts | None
) -> NudgeRates:
    labels = (created or sent).group if (created or sent) else {}
    names = {name: value for name, value in labels.items() if name.endswith("_name")}
    if isinstance(key, date):
        key = key.isoformat()
    group = {by: key or None, **names}
    none = NudgeOutcomeCounts(group={})
    return NudgeRates(group=group, created=created or none, sent=sent or none)
