"""Admin of anomaly alerts: read-only rows (detection writes them), listed per workspace the admin
user was granted, filterable by status, metric and path, acknowledged or resolved by an action
(recorded in the audit log by the admin site, tenancy/admin_changes.py)."""

from django.contrib import admin, messages

from analytics.alerts import services
from analytics.models import Alert
from tenancy.admin_bases import WorkspaceScopedAdmin
from tenancy.admin_filters import WorkspaceFilter


class PathFilter(admin.SimpleListFilter):
    """The paths of the alerts this admin user may see (not every tenant's paths)."""

    title = "path"
    parameter_name = "path"

    def lookups(self, request, model_admin):
        keys = (
            model_admin.get_queryset(request)
            .values_list("path_version__path__key", flat=True)
            .distinct()
            .order_by("path_version__path__key")
        )
        return [(key, key) for key in keys]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(path_version__path__key=self.value())
        return queryset


@admin.register(Alert)
class AlertAdmin(WorkspaceScopedAdmin):
    list_display = (
        "day",
        "workspace",
        "path_version",
        "metric",
        "step_key",
        "value_shown",
        "baseline_shown",
        "score_shown",
        "status",
        "notified",
        "created_at",
    )
    list_filter = ("status", "metric", PathFilter, WorkspaceFilter)
    list_select_related = ("workspace", "path_version__path")
    show_facets = admin.ShowFacets.NEVER
    ordering = ("-day", "-created_at")
    actions = ["acknowledge", "resolve"]
    readonly_fields = [field.name for field in Alert._meta.fields]
    fields = readonly_fields

    def has_add_permission(self, request):
        return False  # alerts come from detection, not from people

    @admin.display(description="value", ordering="value")
    def value_shown(self, obj):
        return f"{obj.value * 100:.1f}% ({obj.numerator} of {obj.denominator})"

    @admin.display(description="baseline")
    def baseline_shown(self, obj):
        median, mad = obj.baseline_median * 100, obj.baseline_mad * 100
        return f"median {median:.1f}%, MAD {mad:.1f} pts, {obj.baseline_days} days"

    @admin.display(description="score", ordering="score")
    def score_shown(self, obj):
        return f"{obj.score:+.1f}"

    @admin.display(description="notified")
    def notified(self, obj):
        return (
            ", ".join(f"{channel}: {each.get('outcome')}" for channel, each in obj.notifications.items())
            or "-"
        )

    def _changeable(self, request, queryset):
        if request.user.is_superuser:
            return queryset
        return queryset.filter(workspace__in=self._workspaces(request, "change"))

    @admin.action(description="Acknowledge selected alerts", permissions=["change"])
    def acknowledge(self, request, queryset):
        count = services.alerts_acknowledge(alerts=self._changeable(request, queryset))
        self.message_user(request, f"Acknowledged {count} alert(s).", messages.SUCCESS)

    @admin.action(description="Resolve selected alerts", permissions=["change"])
    def resolve(self, request, queryset):
        count = services.alerts_resolve(alerts=self._changeable(request, queryset))
        self.message_user(request, f"Resolved {count} alert(s).", messages.SUCCESS)
