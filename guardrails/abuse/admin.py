"""Admin of abuse flags: listed per workspace the admin user may see, filterable by kind,
workspace, state and date, and resolved by an action (recorded in the audit log by the admin
site). The list says how often the detector itself was unavailable."""

import json

from django.contrib import admin, messages
from django.utils.html import format_html
from rangefilter.filters import DateTimeRangeFilterBuilder

from guardrails.abuse import ratelimit
from guardrails.abuse.flags import abuse_flags_resolve
from guardrails.models import AbuseFlag
from tenancy.admin_bases import WorkspaceScopedAdmin
from tenancy.admin_filters import ResolvedFilter, WorkspaceFilter


@admin.register(AbuseFlag)
class AbuseFlagAdmin(WorkspaceScopedAdmin):
    list_display = ("created_at", "kind", "workspace", "subject", "summary", "state")
    list_filter = (
        "kind",
        WorkspaceFilter,
        ResolvedFilter,
        ("created_at", DateTimeRangeFilterBuilder(title="flagged")),
    )
    list_select_related = ("workspace", "api_key", "end_user")
    show_facets = admin.ShowFacets.NEVER
    actions = ["mark_resolved"]
    fields = ("workspace", "kind", "api_key", "end_user", "detail_shown", "created_at", "resolved_at")
    readonly_fields = fields

    def has_add_permission(self, request):
        return False  # flags come from the detector, not from people

    @admin.display(description="subject")
    def subject(self, obj):
        if obj.end_user_id:
            return f"end user {obj.end_user}"
        if obj.api_key_id:
            return f"key {obj.api_key}"
        return obj.detail.get("subject", "")

    @admin.display(description="what was seen")
    def summary(self, obj):
        detail = obj.detail
        for rate in ("events", "identifies"):
            if f"peak_{rate}_per_minute" in detail:
                return (
                    f"{detail[f'peak_{rate}_per_minute']:,} {rate}/min against a baseline of "
                    f"{detail.get(f'baseline_{rate}_per_minute', 0):,}"
                )
        if "invalid_events" in detail:
            return f"{detail['invalid_events']:,} invalid of {detail['events']:,} events"
        if "refused_events" in detail:
            return f"{detail['refused_events']:,} events refused by the rate limit"
        if "failures" in detail:
            return f"{detail['failures']} refused tokens ({detail.get('reason', '')})"
        return ""

    @admin.display(description="state", ordering="resolved_at")
    def state(self, obj):
        return "resolved" if obj.resolved_at else "open"

    @admin.display(description="detail")
    def detail_shown(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.detail, indent=2, sort_keys=True))

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "detector_unavailable": ratelimit.detector_unavailable_count(),
        }
        return super().changelist_view(request, extra_context)

    @admin.action(description="Mark selected flags resolved", permissions=["change"])
    def mark_resolved(self, request, queryset):
        if not request.user.is_superuser:
            queryset = queryset.filter(workspace__in=self._workspaces(request, "change"))
        resolved = abuse_flags_resolve(flags=queryset)
        self.message_user(request, f"Resolved {resolved} flag(s).", messages.SUCCESS)
