"""The experiment manager, basic: experiments with their arms inline, scoped to the admin's
granted workspaces; start, stop and conclude are actions calling experiments.services, which
refuse bad input with the reason (shown as an error message). An experiment is edited only
while it is a draft; assignments are read-only. The results page comes with the decision job.
"""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError

from experiments import services
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
class ExperimentAdmin(WorkspaceScopedAdmin):
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
        ("Status", {"fields": ("status", "started_at", "stopped_at", "concluded_at")}),
    )
    readonly_fields = ("status", "started_at", "stopped_at", "concluded_at")

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status != Experiment.Status.DRAFT:
            return [field.name for field in Experiment._meta.fields]
        return self.readonly_fields

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
