"""The dashboards registry: every dashboard of the admin is one `Dashboard` entry here.

How to add a dashboard: write a module in analytics/dashboards/ with a
`build(request, filters) -> dict` function that reads only analytics' own modules (rollups,
funnels, events, nudges, metrics) and lower apps' selectors, scoped to `filters.workspace`, and
returns its template context with a `tables` list of `tables.Table` (each may carry a `Chart`:
the include admin/analytics/includes/chart_table.html draws it and its table, and
`?export=<table key>` serves any of them as CSV without more code); then add
`Dashboard(key, title, order, build, template)` to `DASHBOARDS` below (an app above analytics
calls `register(Dashboard(...))` from its AppConfig.ready() instead). The one
admin view (views.py) serves it at /admin/analytics/<key>/ behind the admin's password + TOTP,
with the filters parsed from the URL (filters.py), and the navigation lists it under its section.
The template extends admin/analytics/dashboard.html and fills `{% block dashboard %}`.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from analytics.dashboards import nudges, ops, product

ANALYTICS_SECTION = "Analytics"


@dataclass(frozen=True)
class Dashboard:
    key: str  # its URL: /admin/analytics/<key>/ (a slug; not a model name of the analytics app)
    title: str
    order: int  # its place within its navigation section
    build: Callable[[HttpRequest, Any], dict]  # (request, filters.DashboardFilters) -> context
    template: str
    section: str = ANALYTICS_SECTION
    description: str = ""


DASHBOARDS: tuple[Dashboard, ...] = (
    Dashboard(
        key="product",
        title="Product dashboard",
        order=10,
        build=product.build,
        template="admin/analytics/product.html",
        description="Path funnels, activation and time to activation, cohorts, event funnels",
    ),
    Dashboard(
        key="nudges",
        title="Nudges dashboard",
        order=10,
        build=nudges.build,
        template="admin/analytics/nudges.html",
        section="Nudges",
        description="Send, delivery, open, click and conversion rates per day, channel, template, variant",
    ),
    Dashboard(
        key="ops",
        title="Ops dashboard",
        order=30,
        build=ops.build,
        template="admin/analytics/ops.html",
        description="Ingestion, API latency and errors, job queues, nudge pipeline, rollup freshness",
    ),
)


def register(entry: Dashboard) -> None:
    """Add a dashboard of a higher app (experiments registers its own in its AppConfig.ready(),
    since analytics never imports it); registering the same key again replaces the entry. Call
    it at start: the admin's URLs and navigation read the registry when they are built."""
    global DASHBOARDS
    DASHBOARDS = (*(each for each in DASHBOARDS if each.key != entry.key), entry)


def dashboards() -> list[Dashboard]:
    """Every registered dashboard, in navigation order."""
    return sorted(DASHBOARDS, key=lambda entry: (entry.order, entry.title))


def dashboard_get(key: str) -> Dashboard | None:
    return next((entry for entry in DASHBOARDS if entry.key == key), None)
