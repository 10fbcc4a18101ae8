"""The admin's way to the signals reports: a list per workspace and each report file as written.

Mounted under /admin/ by config.urls through the admin site's `admin_view` (password and TOTP);
an admin sees the reports of the workspaces granted to them only (404 for any other).
"""

import re

from csp.decorators import csp
from django.contrib import admin
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from analytics.signals import selectors
from analytics.signals.storage import signals_storage
from tenancy import selectors as tenancy_selectors

_LABEL = re.compile(r"all|\d{4}-\d{2}-\d{2}")
_CONTENT_TYPES = {"report.html": "text/html; charset=utf-8", "summary.json": "application/json"}
# The report carries its own inline CSS and SVG and nothing else: no script may run, nothing loads.
_REPORT_POLICY = {
    "default-src": ["'none'"],
    "style-src": ["'unsafe-inline'"],
    "img-src": ["data:"],
    "base-uri": ["'none'"],
    "form-action": ["'none'"],
    "frame-ancestors": ["'self'"],
}


def signal_reports(request: HttpRequest) -> TemplateResponse:
    storage = signals_storage()
    workspaces = tenancy_selectors.workspaces_for_admin(user=request.user).order_by("name")
    rows = [
        (workspace, selectors.report_labels(storage=storage, workspace_id=workspace.pk))
        for workspace in workspaces
    ]
    context = {
        **admin.site.each_context(request),
        "title": "Signals reports",
        "rows": rows,
        "environment": storage.environment,
    }
    return TemplateResponse(request, "admin/analytics/signal_reports.html", context)


@csp(_REPORT_POLICY)
def signal_report_file(request: HttpRequest, workspace_id: int, label: str, name: str) -> HttpResponse:
    allowed = tenancy_selectors.workspaces_for_admin(user=request.user).filter(pk=workspace_id).exists()
    if not allowed or not _LABEL.fullmatch(label) or name not in _CONTENT_TYPES:
        raise Http404("No such report.")
    content = selectors.report_get(
        storage=signals_storage(), workspace_id=workspace_id, label=label, name=name
    )
    if content is None:
        raise Http404("No such report.")
    response = HttpResponse(content, content_type=_CONTENT_TYPES[name])
    if "download" in request.GET:
        response["Content-Disposition"] = f'attachment; filename="signals-{workspace_id}-{label}-{name}"'
    return response
