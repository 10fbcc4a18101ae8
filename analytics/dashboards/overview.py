"""The Overview home (the admin index): activation rate, time to activation, starts, stuck by
step and nudges sent and converted, each a headline number for the chosen range, its trend per
day (a small chart and its table) and a link to the detail page. Rollups and nudge rows only."""

from django.http import HttpRequest
from django.urls import reverse

from analytics.dashboards import tables as t
from analytics.dashboards.filters import DashboardFilters
from analytics.funnels import metrics as rollup_metrics
from analytics.funnels.trends import DayTrend, activation_distribution, daily_trend
from analytics.nudges.breakdown import nudge_breakdown, nudge_totals
from onboarding.stuck import selectors as stuck_selectors

STUCK_ROWS = 10


def _trend_tables(days: list[DayTrend]) -> dict[str, t.Table]:
    day = t.Column("day", "enrolment day", t.TEXT)
    return {
        "activation": t.Table(
            "activation",
            "Activation rate per enrolment day",
            [
                day,
                t.Column("enrolled", "enrolled"),
                t.Column("activated", "activated"),
                t.Column("activation_rate", "activation rate", t.RATIO),
            ],
            [[each.day, each.enrolled, each.activated, each.activation_rate] for each in days],
            chart=t.Chart("day", ("activation_rate",), "line", "Activation rate per enrolment day"),
            note="A dash: the day's activation window has not closed (pending, not counted).",
        ),
        "tta": t.Table(
            "tta",
            "Time to activation per enrolment day",
            [day, t.Column("p50", "p50 (hours)", t.HOURS), t.Column("p90", "p90 (hours)", t.HOURS)],
            [[each.day, each.tta_p50_hours, each.tta_p90_hours] for each in days],
            chart=t.Chart("day", ("p50", "p90"), "line", "Time to activation p50 and p90 per day"),
        ),
        "starts": t.Table(
            "starts",
            "Starts per enrolment day",
            [
                day,
                t.Column("enrolled", "enrolled"),
                t.Column("started", "started"),
                t.Column("start_rate", "start rate", t.RATIO),
            ],
            [[each.day, each.enrolled, each.started, each.start_rate] for each in days],
            chart=t.Chart("day", ("enrolled", "started"), "bar", "Enrollments and starts per day"),
        ),
    }


def _stuck_table(filters: DashboardFilters) -> tuple[t.Table, int]:
    every = stuck_selectors.stuck_shares_by_step(workspaces=[filters.workspace])
    shares = [share for share in every if share.stuck][:STUCK_ROWS]
    table = t.Table(
        "stuck",
        "Stuck by step (now)",
        [
            t.Column("step", "step", t.TEXT),
            t.Column("on_step", "on the step"),
            t.Column("stuck", "stuck"),
            t.Column("share_of_stuck", "share of the stuck", t.RATIO),
        ],
        [
            [
                f"{share.path_name} v{share.path_version_number} · {share.step_number}. {share.step_key}",
                share.on_step,
                share.stuck,
                share.share_of_stuck,
            ]
            for share in shares
        ],
        chart=t.Chart("step", ("stuck",), "bar", "Stuck enrollments per step"),
        note="Active enrollments now, not over the range: stuck detection keeps no history.",
    )
    return table, sum(share.stuck for share in every)


def _nudge_table(filters: DashboardFilters) -> t.Table:
    rows = nudge_breakdown(filters.nudge_query(), "day")
    return t.Table(
        "nudges",
        "Nudges sent and converted per day",
        [
            t.Column("day", "day sent", t.TEXT),
            t.Column("sent", "sent"),
            t.Column("converted", "converted"),
            t.Column("conversion_rate", "conversion rate", t.RATIO),
        ],
        [[row.group["day"], row.sent.sent, row.sent.converted, row.conversion_rate.value] for row in rows],
        chart=t.Chart("day", ("sent", "converted"), "bar", "Nudges sent and converted per day"),
    )


def build(request: HttpRequest, filters: DashboardFilters, *, product_url: str, nudges_url: str) -> dict:
    query = filters.rollup_query()
    days = daily_trend(query)
    # The cards' numbers summed from the trend and one distribution query, not five more queries.
    headline = rollup_metrics.headline_from_trend(days, activation_distribution(query))
    trends = _trend_tables(days)
    stuck, stuck_total = _stuck_table(filters)
    nudges = _nudge_table(filters)
    stuck_url = reverse("admin:onboarding_enrollmentsignal_changelist")
    cards = [
        (
            "activation",
            "Activation rate",
            headline["activation"],
            trends["activation"],
            product_url,
        ),
        (
            "tta",
            "Time to activation",
            headline["tta_p50"],
            trends["tta"],
            product_url,
        ),
        ("starts", "Starts", headline["starts"], trends["starts"], product_url),
        ("stuck", "Stuck by step", None, stuck, stuck_url),
        ("nudges", "Nudges sent and converted", nudge_totals(filters.nudge_query()), nudges, nudges_url),
    ]
    return {
        "cards": [
            {"key": key, "title": title, "value": value, "table": table, "url": url}
            for key, title, value, table, url in cards
        ],
        "tta_p90": headline["tta_p90"],
        "stuck_total": stuck_total,
        "tables": [trends["activation"], trends["tta"], trends["starts"], stuck, nudges],
    }
