"""Admin for progress outcomes: signals to act on (stuck, needs review) and answer totals."""

from django.contrib import admin, messages

from onboarding.models import AnswerTotal, EnrollmentSignal
from onboarding.stuck import rules as stuck
from onboarding.stuck import selectors as stuck_selectors
from onboarding.stuck import services as enrollment_signals
from paths.models import PathVersion
from tenancy import selectors
from tenancy.admin_bases import ReadOnlyScopedAdmin, WorkspaceScopedAdmin
from tenancy.admin_filters import ResolvedFilter


class SignalStatusFilter(ResolvedFilter):
    title = "status"
    parameter_name = "status"


class SignalWorkspaceFilter(admin.SimpleListFilter):
    """The workspaces this admin user may see (never other tenants' names)."""

    title = "workspace"
    parameter_name = "workspace"

    def lookups(self, request, model_admin):
        return [(str(each.pk), each.name) for each in selectors.workspaces_for_admin(user=request.user)]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(enrollment__workspace_id=self.value())
        return queryset


@admin.register(EnrollmentSignal)
class EnrollmentSignalAdmin(WorkspaceScopedAdmin):
    """Read-only; "change" on the workspace allows the resolve action."""

    workspace_path = "enrollment__workspace"
    list_display = ("created_at", "kind", "step_key", "end_user", "reason", "status", "consumed_at")
    list_filter = ("kind", SignalStatusFilter, SignalWorkspaceFilter)
    list_select_related = ("enrollment__end_user",)
    search_fields = ("enrollment__end_user__external_id", "step_key")
    ordering = ("-created_at", "-pk")
    show_facets = admin.ShowFacets.NEVER
    actions = ["mark_resolved"]
    fields = (
        "enrollment",
        "kind",
        "step_key",
        "reason",
        "created_at",
        "resolved_at",
        "consumed_at",
    )
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    @admin.display(description="end user", ordering="enrollment__end_user__external_id")
    def end_user(self, obj):
        return obj.enrollment.end_user

    @admin.display(description="status")
    def status(self, obj):
        return "resolved" if obj.resolved_at else "open"

    def changelist_view(self, request, extra_context=None):
        """Above the list, where the stuck are: per step, how many of those on it are stuck and
        its share of all the stuck (in the chosen workspace, else every visible one)."""
        workspaces = selectors.workspaces_for_admin(user=request.user)
        chosen = request.GET.get(SignalWorkspaceFilter.parameter_name, "")
        if chosen.isdigit():
            workspaces = workspaces.filter(pk=int(chosen))
        shares = stuck_selectors.stuck_shares_by_step(workspaces=workspaces)
        context = {
            "stuck_by_step": shares,
            "stuck_total": sum(share.stuck for share in shares),
            "on_a_step_total": sum(share.on_step for share in shares),
            "away_after_days": stuck.AWAY_AFTER.days,
            "several_workspaces": len({share.workspace_name for share in shares}) > 1,
        }
        return super().changelist_view(request, {**context, **(extra_context or {})})

    @admin.action(description="Mark selected signals resolved", permissions=["change"])
    def mark_resolved(self, request, queryset):
        allowed = queryset
        if not request.user.is_superuser:
            allowed = queryset.filter(
                enrollment__workspace__in=selectors.workspaces_for_admin(
                    user=request.user, permission="change"
                )
            )
        resolved = enrollment_signals.signals_resolve(signals=allowed)
        self.message_user(request, f"Resolved {resolved} signal(s).", messages.SUCCESS)


class PathVersionFilter(admin.SimpleListFilter):
    """Path versions of the workspaces this admin user may see."""

    title = "path version"
    parameter_name = "path_version"

    def lookups(self, request, model_admin):
        versions = (
            PathVersion.objects.filter(path__workspace__in=selectors.workspaces_for_admin(user=request.user))
            .select_related("path__workspace")
            .order_by("path__workspace__name", "path__name", "-number")
        )
        return [(str(version.pk), f"{version.path.workspace.name}: {version}") for version in versions]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(path_version_id=self.value())
        return queryset


@admin.register(AnswerTotal)
class AnswerTotalAdmin(ReadOnlyScopedAdmin):
    """Per-question, per-answer counts of completed enrollments; pick a path version to read one."""

    list_display = ("path_version", "step_key", "question_key", "answer", "count")
    list_filter = (PathVersionFilter,)
    list_select_related = ("path_version__path",)
    search_fields = ("step_key", "question_key", "answer")
    ordering = ("path_version", "step_key", "question_key", "-count", "answer")
    show_facets = admin.ShowFacets.NEVER
    fields = ("workspace", "path_version", "step_key", "question_key", "answer", "count")
    readonly_fields = fields
