"""Admin of the audit log and the LLM calls: read-only for everyone, scoped to the admin user's
workspaces, filterable, and exportable as CSV or NDJSON (the rows of the current filters,
streamed). Also the admin users' recent sign-ins on their user page."""

import csv
import io
from collections.abc import Iterator

import orjson
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseBadRequest, StreamingHttpResponse
from django.urls import path
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from rangefilter.filters import DateTimeRangeFilterBuilder

from guardrails.models import LLMCall
from tenancy import admin_security
from tenancy.admin_bases import ReadOnlyScopedAdmin
from tenancy.admin_filters import InputFilter, WorkspaceFilter
from tenancy.audit import audit_record
from tenancy.models import AuditLog

EXPORT_CHUNK_SIZE = 2000
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _csv_cell(value) -> str:
    """Text a spreadsheet shows as text: a leading formula character is quoted away."""
    if isinstance(value, dict | list):
        value = orjson.dumps(value).decode()
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


class ActorFilter(InputFilter):
    title = "actor (user name, key prefix, 'cli' or 'system')"
    parameter_name = "actor"
    field_lookup = "actor_label"


class ExportableReadOnlyAdmin(ReadOnlyScopedAdmin):
    """Read-only (no add, change or delete, superusers included) with CSV and NDJSON export."""

    change_list_template = "admin/guardrails/export_change_list.html"
    show_facets = admin.ShowFacets.NEVER
    export_fields: tuple[str, ...] = ()

    def has_delete_permission(self, request, obj=None):
        return False

    def get_actions(self, request):
        return {}  # no "delete selected"; exports follow the filters, not a selection

    def export_row(self, obj) -> dict:
        row = {}
        for name in self.export_fields:
            value = getattr(obj, name)
            row[name] = value.isoformat() if hasattr(value, "isoformat") else value
        return row

    def get_urls(self):
        prefix = f"{self.opts.app_label}_{self.opts.model_name}"
        return [
            path("export.csv", self.admin_site.admin_view(self.export_csv), name=f"{prefix}_export_csv"),
            path(
                "export.ndjson",
                self.admin_site.admin_view(self.export_ndjson),
                name=f"{prefix}_export_ndjson",
            ),
            *super().get_urls(),
        ]

    def _filtered_rows(self, request, format_name: str):
        """The rows the changelist shows for the same query string, every page of them."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return None
        queryset = changelist.get_queryset(request)
        audit_record(
            workspace=None,
            action="audit.exported",
            actor=request.user,
            after={"model": self.opts.label, "format": format_name, "filters": request.GET.urlencode()},
        )
        return queryset.select_related(None).iterator(chunk_size=EXPORT_CHUNK_SIZE)

    def _filename(self, extension: str) -> str:
        return f"{self.opts.model_name}-{timezone.now():%Y%m%d-%H%M%S}.{extension}"

    def export_csv(self, request):
        rows = self._filtered_rows(request, "csv")
        if rows is None:
            return HttpResponseBadRequest("Unknown filter.")

        def lines() -> Iterator[str]:
            buffer = io.StringIO()
            writer = csv.writer(buffer)
            writer.writerow(self.export_fields)
            for obj in rows:
                writer.writerow([_csv_cell(value) for value in self.export_row(obj).values()])
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
            yield buffer.getvalue()

        response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="{self._filename("csv")}"'
        return response

    def export_ndjson(self, request):
        rows = self._filtered_rows(request, "ndjson")
        if rows is None:
            return HttpResponseBadRequest("Unknown filter.")
        lines = (orjson.dumps(self.export_row(obj), default=str) + b"\n" for obj in rows)
        response = StreamingHttpResponse(lines, content_type="application/x-ndjson")
        response["Content-Disposition"] = f'attachment; filename="{self._filename("ndjson")}"'
        return response


@admin.register(AuditLog)
class AuditLogAdmin(ExportableReadOnlyAdmin):
    list_display = ("created_at", "action", "actor_label", "object_type", "object_repr", "workspace")
    list_filter = (
        "action",
        ActorFilter,
        WorkspaceFilter,
        "object_type",
        ("created_at", DateTimeRangeFilterBuilder(title="time")),
    )
    list_select_related = ("workspace",)
    search_fields = ("=object_id", "=request_id")
    search_help_text = "An object id or a request id (exact)."
    ordering = ("-created_at", "-pk")
    show_full_result_count = False
    fields = (
        "created_at",
        "workspace",
        "actor",
        "actor_label",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "changes",
        "request_id",
    )
    readonly_fields = fields
    export_fields = (
        "created_at",
        "workspace_id",
        "actor_label",
        "action",
        "object_type",
        "object_id",
        "object_repr",
        "changes",
        "request_id",
    )


@admin.register(LLMCall)
class LLMCallAdmin(ExportableReadOnlyAdmin):
    list_display = ("created_at", "purpose", "model", "outcome", "cost_usd", "latency_ms", "workspace")
    list_filter = (
        "outcome",
        "model",
        WorkspaceFilter,
        ("created_at", DateTimeRangeFilterBuilder(title="time")),
    )
    list_select_related = ("workspace",)
    search_fields = ("=id", "=end_user__external_id", "fallback_reason")
    search_help_text = "A call id, a user id (exact) or words of the fallback reason."
    ordering = ("-created_at", "-pk")
    show_full_result_count = False
    fields = (
        "created_at",
        "workspace",
        "end_user",
        "purpose",
        "model",
        "outcome",
        "fallback_reason",
        "prompt_tokens",
        "completion_tokens",
        "cost_usd",
        "latency_ms",
        "redacted_input",
        "output",
    )
    readonly_fields = fields
    export_fields = tuple(f"{name}_id" if name in ("workspace", "end_user") else name for name in fields)


# --- Admin users: their recent sign-ins -------------------------------------------------------

User = get_user_model()
_registered_user_admin = type(admin.site._registry.get(User)) if User in admin.site._registry else UserAdmin
if User in admin.site._registry:
    admin.site.unregister(User)


@admin.register(User)
class AdminUserAdmin(_registered_user_admin):
    def get_fieldsets(self, request, obj=None):
        fieldsets = super().get_fieldsets(request, obj)
        if obj is None:
            return fieldsets
        return (*fieldsets, ("Recent sign-ins", {"fields": ("recent_sign_ins",)}))

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), "recent_sign_ins")

    @admin.display(description="last 10 sign-ins")
    def recent_sign_ins(self, obj):
        entries = admin_security.recent_logins(user=obj)
        if not entries:
            return "none recorded"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    entry.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    entry.action.removeprefix("admin.")
                    + (
                        f" ({entry.changes['after']['reason']})"
                        if entry.changes.get("after", {}).get("reason")
                        else ""
                    ),
                    entry.changes.get("after", {}).get("ip_network") or "-",
                )
                for entry in entries
            ),
        )
        return format_html("<table><tr><th>time (UTC)</th><th>what</th><th>network</th></tr>{}</table>", rows)
