"""The nudges dashboard: send, delivery, open, click and conversion rates per day, and per channel,
template and variant, over the chosen range.

Counted by analytics.nudges (breakdown and over_time), hence by nudges.selectors'
nudge_outcome_counts like the metrics, the API and the template admin: the send rate is over the
nudges created that day, the other rates over the nudges sent that day (metrics14's definitions).
"""

from django.http import HttpRequest

from analytics.dashboards import tables as t
from analytics.dashboards.filters import DashboardFilters
from analytics.nudges.breakdown import NudgeRates, nudge_breakdown, nudge_totals
from analytics.nudges.over_time import DIMENSIONS, NudgeSeries, nudge_rates_over_time

RATES = (
    ("send_rate", "send rate"),
    ("delivery_rate", "delivery rate"),
    ("open_rate", "open rate"),
    ("click_rate", "click rate"),
    ("conversion_rate", "conversion rate"),
)
# Per dimension, the rates drawn per day (one chart and table each).
RATES_OVER_TIME = (("open_rate", "open rate"), ("conversion_rate", "conversion rate"))
DIMENSION_LABELS = {"channel": "channel", "template": "template", "variant": "variant"}


def _counts(rates: NudgeRates) -> list:
    created, sent = rates.created, rates.sent
    return [created.created, sent.sent, sent.delivered, sent.opened, sent.clicked, sent.converted]


COUNT_COLUMNS = [
    t.Column("created", "created"),
    t.Column("sent", "sent"),
    t.Column("delivered", "delivered"),
    t.Column("opened", "opened"),
    t.Column("clicked", "clicked"),
    t.Column("converted", "converted"),
]
RATE_COLUMNS = [t.Column(key, label, t.RATIO) for key, label in RATES]


def _row(rates: NudgeRates) -> list:
    return [*_counts(rates), *(getattr(rates, key).value for key, _ in RATES)]


def _per_day_table(filters: DashboardFilters) -> t.Table:
    days = nudge_breakdown(filters.nudge_query(), "day")
    return t.Table(
        "per_day",
        "Nudge rates per day",
        [t.Column("day", "day", t.TEXT), *COUNT_COLUMNS, *RATE_COLUMNS],
        [[rates.group["day"], *_row(rates)] for rates in days],
        chart=t.Chart(
            "day",
            ("send_rate", "open_rate", "click_rate", "conversion_rate"),
            "line",
            "Send, open, click and conversion rates per day",
        ),
        note="created and the send rate: nudges created that day; the rest: nudges sent that day.",
    )


def _label(by: str, rates: NudgeRates) -> str:
    value = rates.group.get(by)
    if value in (None, ""):
        return "(none)"
    return str(rates.group.get(f"{by}_name") or value)


def _dimension_table(filters: DashboardFilters, by: str) -> t.Table:
    rows = nudge_breakdown(filters.nudge_query(), by)
    # By label (a template's name, not its id), none last: the order of the series over time.
    rows.sort(key=lambda rates: (_label(by, rates) == "(none)", _label(by, rates).lower()))
    return t.Table(
        f"by_{by}",
        f"Per {DIMENSION_LABELS[by]}, whole range",
        [t.Column(by, DIMENSION_LABELS[by], t.TEXT), *COUNT_COLUMNS, *RATE_COLUMNS],
        [[_label(by, rates), *_row(rates)] for rates in rows],
        chart=t.Chart(by, ("open_rate", "click_rate", "conversion_rate"), "bar", f"Rates per {by}"),
    )


def _over_time_table(by: str, series: list[NudgeSeries], rate: str, rate_label: str) -> t.Table:
    columns = [t.Column("day", "day", t.TEXT)]
    columns += [t.Column(f"{rate}_{index}", each.label, t.RATIO) for index, each in enumerate(series)]
    days = [day for day, _ in series[0].days] if series else []
    rows = [
        [day.isoformat(), *(getattr(each.days[position][1], rate).value for each in series)]
        for position, day in enumerate(days)
    ]
    return t.Table(
        f"{rate}_per_{by}_per_day",
        f"{rate_label.capitalize()} per {DIMENSION_LABELS[by]} per day",
        columns,
        rows,
        chart=t.Chart(
            "day",
            tuple(column.key for column in columns[1:]),
            "line",
            f"{rate_label.capitalize()} per {by} per day",
        )
        if series
        else None,
        note=f"{t.NONE_SHOWN} : nothing sent that day.",
    )


def build(request: HttpRequest, filters: DashboardFilters) -> dict:
    query = filters.nudge_query()
    totals = nudge_totals(query)
    sections = []
    for by in DIMENSIONS:
        series = nudge_rates_over_time(query, by)
        over_time = [_over_time_table(by, series, rate, label) for rate, label in RATES_OVER_TIME]
        sections.append((DIMENSION_LABELS[by], _dimension_table(filters, by), over_time))
    per_day = _per_day_table(filters)
    return {
        "tables": [per_day, *(table for _, whole, over_time in sections for table in (whole, *over_time))],
        "per_day_table": per_day,
        "sections": sections,
        "totals": totals,
    }
