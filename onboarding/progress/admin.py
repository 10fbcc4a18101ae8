"""Admin for progress: the enrollments list, signals to act on (stuck, needs review) with where
the stuck are, and answer totals."""

from datetime import timedelta
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.db.models import OuterRef, Subquery
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from rangefilter.filters import DateRangeFilterBuilder

from onboarding.admin_filters import (
    EnrollmentPathFilter,
    EnrollmentPathVersionFilter,
    EnrollmentStepFilter,
    EnrollmentStuckFilter,
)
from onboarding.models import AnswerTotal, Enrollment, EnrollmentSignal
from onboarding.stuck import rules as stuck
from onboarding.stuck import selectors as stuck_selectors
from onboarding.stuck import services as enrollment_signals
from paths.models import PathVersion, Step
from tenancy import selectors
from tenancy.admin_bases import ReadOnlyScopedAdmin, WorkspaceScopedAdmin
from tenancy.admin_filters import ResolvedFilter, WorkspaceFilter


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
        enrollments = reverse("admin:onboarding_enrollment_changelist")
        context = {
            "stuck_by_step": shares,
            # Each step's row with its stuck people's median time there and the list of them.
            "stuck_rows": [
                (
                    share,
                    _duration_label(share.median_time_in_step),
                    f"{enrollments}?{_stuck_on_step_query(share)}" if share.stuck else "",
                )
                for share in shares
            ],
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


def _duration_label(duration: timedelta | None) -> str:
    """ "3.5 days", "5.0 hours", "12 minutes": a median read at a glance."""
    if duration is None:
        return "-"
    seconds = duration.total_seconds()
    if seconds >= 86400:
        return f"{seconds / 86400:.1f} days"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds // 60:.0f} minutes"


def _stuck_on_step_query(share: stuck_selectors.StepStuckShare) -> str:
    """The enrollments list's filters that show exactly the people a stuck-per-step row counts."""
    filters = {
        EnrollmentPathFilter.parameter_name: share.path_id,  # None: a step its version lost
        EnrollmentPathVersionFilter.parameter_name: share.path_version_id,
        EnrollmentStepFilter.parameter_name: share.step_key,
        EnrollmentStuckFilter.parameter_name: "yes",
    }
    return urlencode({name: value for name, value in filters.items() if value is not None})


@admin.register(Enrollment)
class EnrollmentAdmin(ReadOnlyScopedAdmin):
    """Who is on which path, where, and who is stuck. Read-only: progress changes only through
    the progress engine (events, the progress API, the end user's own screens), so what is shown
    here is always what the engine derived."""

    list_display = (
        "end_user_link",
        "path_and_version",
        "status",
        "current_step",
        "enrolled_at",
        "completed_at",
        "stuck",
    )
    list_filter = (
        WorkspaceFilter,
        EnrollmentPathFilter,
        EnrollmentPathVersionFilter,
        "status",
        EnrollmentStuckFilter,
        EnrollmentStepFilter,
        ("enrolled_at", DateRangeFilterBuilder(title="enrolled")),
    )
    list_select_related = ("end_user", "path_version__path")
    # Exact: the index on the external id answers it, at a million end users too.
    search_fields = ("end_user__external_id__exact",)
    search_help_text = "The end user's external id (the product's userId), exactly."
    ordering = ("-enrolled_at", "-pk")
    show_facets = admin.ShowFacets.NEVER
    show_full_result_count = False
    fields = (
        "workspace",
        "end_user_link",
        "path_version",
        "status",
        "current_step",
        "step_entered_at",
        "stuck",
        "enrolled_at",
        "completed_at",
        "revision",
        "decision_reason",
        "answers",
    )
    readonly_fields = fields

    def get_queryset(self, request):
        """With the current step's title, read by the database in the same query (no N+1)."""
        titles = Step.objects.filter(path_version=OuterRef("path_version"), key=OuterRef("current_step_key"))
        return super().get_queryset(request).annotate(current_step_title=Subquery(titles.values("title")[:1]))

    @admin.display(description="end user", ordering="end_user__external_id")
    def end_user_link(self, obj):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:onboarding_enduser_change", args=[obj.end_user_id]),
            obj.end_user,
        )

    @admin.display(description="path", ordering="path_version__path__name")
    def path_and_version(self, obj):
        return f"{obj.path_version.path.name} v{obj.path_version.number}"

    @admin.display(description="current step")
    def current_step(self, obj):
        if not obj.current_step_key:
            return "-"
        return getattr(obj, "current_step_title", None) or obj.current_step_key

    @admin.display(description="stuck", ordering="stuck_at")
    def stuck(self, obj):
        if obj.status != Enrollment.Status.ACTIVE or obj.stuck_at is None:
            return "no"
        return f"yes, since {timezone.localtime(obj.stuck_at):%Y-%m-%d %H:%M}"
