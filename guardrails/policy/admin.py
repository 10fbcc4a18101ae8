"""Admin of the policy engine and the consent ledger, scoped to the admin user's workspaces.

WorkspacePolicy is editable (with "change" on the workspace); the consent ledger, the policy
decisions ("why did or didn't this user get this nudge?"), suppressions and preferences are
read-only: they change only through the services of guardrails.policy and guardrails.preferences
and the policy engine.
"""

from django.contrib import admin
from django.db.models import Q
from django.utils.html import format_html, format_html_join
from rangefilter.filters import DateTimeRangeFilterBuilder

from guardrails.models import ConsentRecord, PolicyDecision, Preference, Suppression, WorkspacePolicy
from guardrails.policy import subjects
from tenancy import selectors as tenancy_selectors
from tenancy.admin_bases import ReadOnlyScopedAdmin, WorkspaceScopedAdmin
from tenancy.admin_filters import InputFilter, WorkspaceFilter


class EndUserFilter(InputFilter):
    title = "user id"
    parameter_name = "user"
    field_lookup = "end_user__external_id"


class SuppressionSubjectFilter(InputFilter):
    """Type an email, a phone number or a user id: suppressions keep only its digest."""

    title = "email, phone or user id"
    parameter_name = "subject"

    def queryset(self, request, queryset):
        value = (self.value() or "").strip()
        if not value:
            return queryset
        kinds = [subjects.EMAIL] if "@" in value else [subjects.PHONE, subjects.USER_ID]
        matches = Q(pk__in=[])
        for workspace_id in tenancy_selectors.workspaces_for_admin(user=request.user).values_list(
            "pk", flat=True
        ):
            digests = [subjects.subject_digest(workspace_id, kind, value) for kind in kinds]
            matches |= Q(workspace_id=workspace_id, subject_digest__in=digests)
        return queryset.filter(matches)


@admin.register(WorkspacePolicy)
class WorkspacePolicyAdmin(WorkspaceScopedAdmin):
    list_display = (
        "workspace",
        "daily_nudge_cap",
        "quiet_hours",
        "llm_daily_budget_usd",
        "data_region",
        "updated_at",
    )
    list_filter = (WorkspaceFilter, "data_region")
    list_select_related = ("workspace",)
    readonly_fields = ("updated_at",)

    def get_readonly_fields(self, request, obj=None):
        # Moving a policy to another workspace would leave the first on the defaults unnoticed.
        return ("workspace", "updated_at") if obj is not None else ("updated_at",)

    @admin.display(description="default quiet hours")
    def quiet_hours(self, obj):
        if obj.quiet_hours_start is None or obj.quiet_hours_end is None:
            return "none"
        return f"{obj.quiet_hours_start:%H:%M}-{obj.quiet_hours_end:%H:%M} (user's time)"


@admin.register(ConsentRecord)
class ConsentRecordAdmin(ReadOnlyScopedAdmin):
    list_display = ("recorded_at", "end_user", "channel", "purpose", "granted", "source", "workspace")
    list_filter = (
        EndUserFilter,
        "channel",
        "purpose",
        "granted",
        "source",
        ("recorded_at", DateTimeRangeFilterBuilder(title="time")),
        WorkspaceFilter,
    )
    list_select_related = ("end_user", "workspace")
    show_facets = admin.ShowFacets.NEVER
    show_full_result_count = False
    fields = ("workspace", "end_user", "channel", "purpose", "granted", "source", "recorded_at")
    readonly_fields = fields


@admin.register(PolicyDecision)
class PolicyDecisionAdmin(ReadOnlyScopedAdmin):
    list_display = ("decided_at", "end_user", "action", "channel", "allowed", "why", "workspace")
    list_filter = (
        EndUserFilter,
        "action",
        "allowed",
        "channel",
        ("decided_at", DateTimeRangeFilterBuilder(title="time")),
        WorkspaceFilter,
    )
    list_select_related = ("end_user", "workspace")
    show_facets = admin.ShowFacets.NEVER
    show_full_result_count = False
    fields = ("workspace", "end_user", "action", "channel", "allowed", "reasons_table", "decided_at")
    readonly_fields = fields

    @admin.display(description="why")
    def why(self, obj):
        if not obj.reasons:
            return "all checks passed"
        return "; ".join(reason.get("message", reason.get("code", "")) for reason in obj.reasons)

    @admin.display(description="reasons")
    def reasons_table(self, obj):
        if not obj.reasons:
            return "all checks passed"
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (reason.get("code", ""), reason.get("message", ""), reason.get("not_before", "-"))
                for reason in obj.reasons
            ),
        )
        return format_html("<table><tr><th>rule</th><th>why</th><th>not before</th></tr>{}</table>", rows)


@admin.register(Suppression)
class SuppressionAdmin(ReadOnlyScopedAdmin):
    list_display = ("created_at", "reason", "scope", "digest", "workspace")
    list_filter = (SuppressionSubjectFilter, "reason", "channel", WorkspaceFilter)
    list_select_related = ("workspace",)
    show_facets = admin.ShowFacets.NEVER
    fields = ("workspace", "channel", "reason", "subject_digest", "created_at")
    readonly_fields = fields

    @admin.display(description="channel")
    def scope(self, obj):
        return obj.channel or "all channels"

    @admin.display(description="subject digest")
    def digest(self, obj):
        return f"{obj.subject_digest[:12]}…"


@admin.register(Preference)
class PreferenceAdmin(ReadOnlyScopedAdmin):
    list_display = ("end_user", "quiet_hours", "snooze_until", "do_not_disturb", "updated_at", "workspace")
    list_filter = (EndUserFilter, "do_not_disturb", WorkspaceFilter)
    list_select_related = ("end_user", "workspace")
    show_facets = admin.ShowFacets.NEVER
    fields = (
        "workspace",
        "end_user",
        "quiet_hours_start",
        "quiet_hours_end",
        "snooze_until",
        "do_not_disturb",
        "updated_at",
    )
    readonly_fields = fields

    @admin.display(description="quiet hours")
    def quiet_hours(self, obj):
        if obj.quiet_hours_start is None or obj.quiet_hours_end is None:
            return "-"
        return f"{obj.quiet_hours_start:%H:%M}-{obj.quiet_hours_end:%H:%M}"
