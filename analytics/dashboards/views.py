"""The one admin view that renders any registered dashboard (analytics.dashboards.registry) at
/admin/analytics/<key>/, and the Overview home the admin index shows.

Both parse the filters from the URL (filters.py), build the dashboard's context, and answer
`?export=<table key>` with that table as CSV. Mounted by config/admin_site.py through the admin
site's `admin_view`, so behind the same password + TOTP as every admin page.
"""

from urllib.parse import parse_qsl

from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, reverse

from analytics.dashboards import overview
from analytics.dashboards.filters import SEGMENTS, DashboardFilters, parse_filters
from analytics.dashboards.registry import Dashboard, dashboard_get, dashboards
from analytics.dashboards.tables import Table
from paths import selectors as paths_selectors

URL_NAME = "analytics_dashboard"


def dashboard_url(key: str) -> str | None:
    try:
        return reverse(f"admin:{URL_NAME}", kwargs={"key": key})
    except NoReverseMatch:
        return None


def _csv(tables: list[Table], key: str, filters: DashboardFilters, prefix: str) -> HttpResponse:
    table = next((each for each in tables if each.key == key), None)
    if table is None:
        raise Http404(f"No table {key!r} on this dashboard.")
    response = HttpResponse(table.csv(), content_type="text/csv; charset=utf-8")
    name = f"{prefix}-{table.key}-{filters.date_from}-{filters.date_to}.csv"
    response["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _filter_context(request: HttpRequest, filters: DashboardFilters) -> dict:
    paths = (
        list(paths_selectors.paths_for_workspace(workspace=filters.workspace).order_by("name"))
        if filters.workspace is not None
        else []
    )
    kept = request.GET.copy()
    kept.pop("export", None)
    return {
        "export_query": kept.urlencode(),
        "filter_pairs": list(parse_qsl(filters.querystring())),
        "filters": filters,
        "filter_paths": paths,
        "segment_fields": [
            (name, name.replace("_", " "), filters.segments.get(name, "")) for name in SEGMENTS
        ],
        "querystring": filters.querystring(),
        "dashboards": [(entry, dashboard_url(entry.key)) for entry in dashboards()],
    }


def render_dashboard(request: HttpRequest, dashboard: Dashboard) -> HttpResponse:
    filters = parse_filters(request)
    context = {**admin.site.each_context(request), "title": dashboard.title, "dashboard": dashboard}
    context.update(_filter_context(request, filters))
    errors = dict(filters.errors)
    if filters.workspace is not None:
        built = dashboard.build(request, filters)
        errors.update(built.pop("errors", {}))
        context.update(built)
        export = request.GET.get("export")
        if export:
            return _csv(context.get("tables", []), export, filters, dashboard.key)
    context["errors"] = errors
    return TemplateResponse(request, dashboard.template, context, status=400 if errors else 200)


def dashboard_view(request: HttpRequest, key: str) -> HttpResponse:
    dashboard = dashboard_get(key)
    if dashboard is None:
        raise Http404(f"No dashboard {key!r}.")
    return render_dashboard(request, dashboard)


def overview_context(request: HttpRequest) -> dict | HttpResponse:
    """The Overview home's context for the admin index, or the CSV of one of its tables."""
    filters = parse_filters(request)
    context = {**_filter_context(request, filters), "errors": dict(filters.errors)}
    if filters.workspace is None:
        return context
    suffix = f"?{filters.querystring()}"
    product = dashboard_url("product")
    nudges = dashboard_url("nudges")
    built = overview.build(
        request,
        filters,
        product_url=product + suffix if product else "",
        nudges_url=nudges + suffix if nudges else reverse("admin:nudges_nudge_changelist"),
    )
    export = request.GET.get("export")
    if export:
        return _csv(built["tables"], export, filters, "overview")
    return {**context, **built}
