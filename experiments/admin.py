"""The experiment manager: experiments with their arms inline, scoped to the admin's granted
workspaces. "New experiment" on a path or a nudge template, the Start / Stop / Conclude / "Roll out
the winner" buttons and the results page are experiments/admin_views.py; start, stop and conclude
are also changelist actions. All of them call experiments.services, which refuses bad input with
the reason (shown as an error message). An experiment is edited only while it is a draft;
assignments are read-only.
"""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.http import HttpResponseRedirect
from django.urls import reverse

from analytics.dashboards.views import dashboard_url
from experiments import services
from experiments.admin_views import ExperimentPagesMixin
from experiments.dashboard import DASHBOARD_KEY, last_decision
from experiments.models import Assignment, Experiment, Variant
from paths.models import Path, PathVersion
from tenancy import selectors as tenancy_selectors
from tenancy.admin_bases import ReadOnlyScopedAdmin, WorkspaceScopedAdmin
from tenancy.admin_filters import WorkspaceFilter


class VariantInline(admin.TabularInline):
    model = Variant
    extra = 0
    fields = ("position", "key", "weight", "path_version", "template_version", "model_version")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "path_version":
            workspaces = tenancy_selectors.workspaces_for_admin(user=request.user, permission="change")
            kwargs["queryset"] = PathVersion.objects.filter(path__workspace__in=workspaces).select_related(
                "path"
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    # The experiment's admin already checked the workspace grant; arms change only on drafts.
    def has_view_permission(self, request, obj=None):
        return True

    def has_add_permission(self, request, obj=None):
        return obj is None or obj.status == Experiment.Status.DRAFT

    def has_change_permission(self, request, obj=None):
        return obj is None or obj.status == Experiment.Status.DRAFT

    def has_delete_permission(self, request, obj=None):
        return obj is not None and obj.status == Experiment.Status.DRAFT


def _transition(action: str, service, done: str):
    def run(modeladmin, request, queryset):
        for experiment in queryset:
            try:
                service(experiment=experiment)
            except ValidationError as error:
                reasons = "; ".join(
                    f"{field}: {' '.join(texts)}" for field, texts in error.message_dict.items()
                )
                modeladmin.message_user(
                    request, f"{experiment.key} was not {done}: {reasons}", messages.ERROR
                )
            else:
                modeladmin.message_user(request, f"{experiment.key} {done}.", messages.SUCCESS)

    run.__name__ = action
    run.short_description = f"{action.capitalize()} selected experiments"
    run.allowed_permissions = ("change",)
    return run


@admin.register(Experiment)
class ExperimentAdmin(ExperimentPagesMixin, WorkspaceScopedAdmin):
    change_form_template = "admin/experiments/experiment/change_form.html"
    change_list_template = "admin/experiments/experiment/change_list.html"
    list_display = ("key", "name", "workspace", "kind", "status", "path", "traffic_share", "started_at")
    list_filter = (WorkspaceFilter, "status", "kind")
    list_select_related = ("workspace", "path")
    search_fields = ("key", "name")
    inlines = [VariantInline]
    actions = [
        _transition("start", services.experiment_start, "started"),
        _transition("stop", services.experiment_stop, "stopped"),
        _transition("conclude", services.experiment_conclude, "concluded"),
    ]
    fieldsets = (
        (None, {"fields": ("workspace", "key", "name", "hypothesis", "kind", "path", "owner")}),
        ("Allocation", {"fields": ("traffic_share", "seed")}),
        (
            "Audience (within the path's audience)",
            {"fields": tuple(Experiment.AUDIENCE_FIELDS.values())},
        ),
        (
            "Metrics and duration",
            {
                "fields": (
                    "primary_metric",
                    "guardrail_metrics",
                    "minimum_sample_per_arm",
                    "minimum_duration_days",
                    "maximum_duration_days",
                )
            },
        ),
        (
            "Status",
            {"fields": ("status", "started_at", "stopped_at", "concluded_at", "decision", "planned_end")},
        ),
    )
    readonly_fields = ("status", "started_at", "stopped_at", "concluded_at", "decision", "planned_end")

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status != Experiment.Status.DRAFT:
            return [*(field.name for field in Experiment._meta.fields), "decision", "planned_end"]
        return self.readonly_fields

    @admin.display(description="last decision")
    def decision(self, obj):
        decided = last_decision(obj) if obj is not None else None
        if not decided:
            return "none yet (the decision job evaluates running experiments hourly)"
        winner = f": {decided['winner']}" if decided.get("winner") else ""
        return (
            f"{decided['action']}{winner} at {decided.get('evaluated_at', '')[:16]} UTC. {decided['reason']}"
        )

    @admin.display(description="planned end")
    def planned_end(self, obj):
        if obj is None:
            return ""
        days = obj.planned_duration_days or obj.minimum_duration_days
        extended = " (extended by the decision job)" if obj.planned_duration_days else ""
        return f"after {days} days{extended}, at most {obj.maximum_duration_days}"

    def get_urls(self):
        return [*self.experiment_urls(), *super().get_urls()]

    def add_view(self, request, form_url="", extra_context=None):
        """New experiments are made by the services, from a path or a template (admin_views.py):
        the model's own add form ("+ Add" in the navigation) leads there."""
        return HttpResponseRedirect(reverse("admin:experiments_new_path"))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["status_buttons"] = self.status_buttons(request, obj)
            context["results_url"] = reverse("admin:experiments_experiment_results", args=[obj.pk])
        return super().render_change_form(request, context, add, change, form_url, obj)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "dashboard_url": dashboard_url(DASHBOARD_KEY)}
        return super().changelist_view(request, extra_context)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "path":
            kwargs["queryset"] = Path.objects.filter(workspace__in=self._workspaces(request, "change"))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyScopedAdmin):
    list_display = ("experiment", "variant", "end_user", "assigned_at", "hash_value")
    list_filter = (WorkspaceFilter,)
    list_select_related = ("experiment", "variant", "end_user")
    search_fields = ("experiment__key", "end_user__external_id")
    raw_id_fields = ("end_user", "enrollment")
