"""The model registry in the admin: versions (read-only, with their metrics, transitions and
alerts, and the buttons of ml/admin_views.py) and model alerts (acknowledged by an action), scoped
to the admin's granted workspaces. Every button and action calls ml.registry.services.
"""

from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from ml.admin_views import ModelVersionPagesMixin, reasons_text
from ml.models import ModelAlert, ModelVersion
from ml.registry import selectors, services
from tenancy.admin_bases import WorkspaceScopedAdmin
from tenancy.admin_filters import WorkspaceFilter

NONE = "—"


def _number(value, digits: int = 3) -> str:
    return f"{value:.{digits}f}" if isinstance(value, int | float) else NONE


def _table(headers: list[str], rows: list[list]) -> str:
    if not rows:
        return NONE
    head = format_html_join("", "<th>{}</th>", ((header,) for header in headers))
    body = format_html_join(
        "", "<tr>{}</tr>", ((format_html_join("", "<td>{}</td>", ((cell,) for cell in row)),) for row in rows)
    )
    return format_html("<table><thead><tr>{}</tr></thead><tbody>{}</tbody></table>", head, body)


def _calibration_rows(calibration) -> list[list]:
    """ml/training/evaluation.calibration's bins: {lower, upper, count, mean_predicted, observed_rate}."""
    bins = calibration.get("bins") if isinstance(calibration, dict) else calibration
    rows = []
    for each in bins if isinstance(bins, list) else []:
        if not isinstance(each, dict) or not each.get("count"):
            continue
        edges = (
            f"{_number(each.get('lower'), 1)}-{_number(each.get('upper'), 1)}" if "lower" in each else NONE
        )
        predicted = each.get("mean_predicted", each.get("predicted"))
        observed = each.get("observed_rate", each.get("observed"))
        rows.append([edges, _number(predicted), _number(observed), f"{each['count']:,}"])
    return rows


def _interval(values) -> str:
    if not isinstance(values, list | tuple) or len(values) != 2 or None in values:
        return NONE
    return f"[{_number(values[0])}, {_number(values[1])}]"


def _policy_rows(policy: dict) -> list[list]:
    """ml/training/evaluation.policy_estimate: {policy: {activation, ci95, difference, ...}}."""
    return [
        [
            name,
            _number(each.get("activation")),
            _interval(each.get("ci95")),
            f"{each['difference']:+.3f} {_interval(each.get('difference_ci95'))}"
            if isinstance(each.get("difference"), int | float)
            else "baseline",
            each.get("matched_rows", NONE),
            _number(each.get("effective_rows"), 0),
        ]
        for name, each in policy.items()
        if isinstance(each, dict)
    ]


@admin.register(ModelVersion)
class ModelVersionAdmin(ModelVersionPagesMixin, WorkspaceScopedAdmin):
    change_form_template = "admin/ml/modelversion/change_form.html"
    change_list_template = "admin/ml/modelversion/change_list.html"
    list_display = ("name", "version", "status", "auc", "training_window", "created_at", "workspace")
    list_filter = (WorkspaceFilter, "name", "status")
    list_select_related = ("workspace",)
    search_fields = ("name", "version")
    actions = ["rollback_models"]
    fieldsets = (
        (None, {"fields": ("workspace", "name", "version", "status", "status_changed_at", "activated_at")}),
        ("Lineage", {"fields": ("replaced", "experiment", "promotion", "created_at", "created_by")}),
        (
            "Metrics",
            {"fields": ("auc", "log_loss", "calibration", "policy_estimate", "other_metrics")},
        ),
        (
            "Training",
            {
                "fields": (
                    "training_window",
                    "training_rows",
                    "validation_rows",
                    "trained_seconds",
                    "params",
                    "features",
                )
            },
        ),
        ("Artifact", {"fields": ("feature_schema_hash", "artifact", "artifact_sha256", "artifact_size")}),
        ("History", {"fields": ("transitions", "alerts")}),
    )

    def get_readonly_fields(self, request, obj=None):
        return [field for fieldset in self.fieldsets for field in fieldset[1]["fields"]]

    # Versions are written by training and moved by the buttons: the page itself only shows.
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def get_urls(self):
        return [*self.version_urls(), *super().get_urls()]

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["version_buttons"] = self.buttons(request, obj)
        return super().render_change_form(request, context, add, change, form_url, obj)

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "rollback_buttons": self.rollback_buttons(request)}
        return super().changelist_view(request, extra_context)

    @admin.action(description="Roll back the selected versions' models", permissions=["act"])
    def rollback_models(self, request, queryset):
        models = {(each.workspace, each.name) for each in queryset if self.may_act(request, each)}
        for workspace, name in sorted(models, key=str):
            try:
                restored = services.model_rollback(workspace=workspace, name=name, actor=request.user)
            except ValidationError as error:
                self.message_user(
                    request, f"{name} was not rolled back: {reasons_text(error)}", messages.ERROR
                )
            else:
                self.message_user(request, f"{name}: {restored.label} is active again.", messages.SUCCESS)

    # --- What the page shows ----------------------------------------------------------------

    @admin.display(description="AUC")
    def auc(self, obj):
        return _number(obj.metrics.get("auc"))

    @admin.display(description="log loss")
    def log_loss(self, obj):
        return _number(obj.metrics.get("log_loss"))

    @admin.display(description="calibration (validation bins)")
    def calibration(self, obj):
        calibration = obj.metrics.get("calibration")
        table = _table(["bin", "mean predicted", "observed rate", "rows"], _calibration_rows(calibration))
        if isinstance(calibration, dict) and isinstance(calibration.get("ece"), int | float):
            return format_html("<p>expected calibration error {}</p>{}", _number(calibration["ece"]), table)
        return table

    @admin.display(description="policy estimate")
    def policy_estimate(self, obj):
        policy = obj.metrics.get("policy")
        if not isinstance(policy, dict):
            return "none (only the path classifier has one)" if obj.name != "path_classifier" else NONE
        headers = [
            "policy",
            "activation",
            "95% CI",
            "difference vs baseline [95% CI]",
            "matched rows",
            "effective",
        ]
        return _table(headers, _policy_rows(policy))

    @admin.display(description="other metrics")
    def other_metrics(self, obj):
        shown = {"auc", "log_loss", "calibration", "policy"}
        return _table(["", ""], [[key, value] for key, value in obj.metrics.items() if key not in shown])

    @admin.display(description="training window")
    def training_window(self, obj):
        return f"{obj.training_window_start:%Y-%m-%d} to {obj.training_window_end:%Y-%m-%d}"

    @admin.display(description="artifact size")
    def artifact_size(self, obj):
        return f"{obj.artifact_bytes / 1024:,.1f} KiB ({obj.artifact_bytes:,} bytes)"

    @admin.display(description="model experiment")
    def experiment(self, obj):
        experiment = selectors.model_experiment(workspace=obj.workspace, model_version=obj)
        if experiment is None:
            return NONE
        url = reverse("admin:experiments_experiment_change", args=[experiment.pk])
        return format_html('<a href="{}">{}</a> ({})', url, experiment.key, experiment.status)

    @admin.display(description="promotion")
    def promotion(self, obj):
        if obj.status not in (ModelVersion.Status.SHADOW, ModelVersion.Status.AB):
            return NONE
        check = selectors.promotion_check(workspace=obj.workspace, model_version=obj)
        return f"{'allowed' if check.allowed else 'refused without an override'}: {check.reason}"

    @admin.display(description="transitions")
    def transitions(self, obj):
        rows = [
            [
                f"{row.created_at:%Y-%m-%d %H:%M:%S}",
                row.action.removeprefix("ml.model_"),
                _status_change(row.changes),
                row.actor_label,
                row.changes.get("reason", ""),
            ]
            for row in selectors.transitions(workspace=obj.workspace, model_version=obj)
        ]
        return _table(["at (UTC)", "transition", "status", "by", "reason"], rows)

    @admin.display(description="alerts")
    def alerts(self, obj):
        rows = [
            [f"{alert.created_at:%Y-%m-%d %H:%M}", alert.get_kind_display(), alert.message, _seen(alert)]
            for alert in selectors.alerts(workspace=obj.workspace, model_version=obj)
        ]
        return _table(["at (UTC)", "kind", "message", "acknowledged"], rows)


def _status_change(changes: dict) -> str:
    return f"{changes.get('before', {}).get('status', '')} → {changes.get('after', {}).get('status', '')}"


def _seen(alert: ModelAlert) -> str:
    return f"{alert.acknowledged_at:%Y-%m-%d %H:%M}" if alert.acknowledged_at else "no"


class AcknowledgedFilter(admin.SimpleListFilter):
    title = "acknowledged"
    parameter_name = "acknowledged"

    def lookups(self, request, model_admin):
        return (("no", "not yet"), ("yes", "acknowledged"))

    def queryset(self, request, queryset):
        if self.value() in ("no", "yes"):
            return queryset.filter(acknowledged_at__isnull=self.value() == "no")
        return queryset


@admin.register(ModelAlert)
class ModelAlertAdmin(WorkspaceScopedAdmin):
    list_display = ("created_at", "kind", "model_version", "message", "acknowledged_at", "workspace")
    list_filter = (WorkspaceFilter, "kind", AcknowledgedFilter)
    list_select_related = ("workspace", "model_version")
    actions = ["acknowledge"]

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in ModelAlert._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_act_permission(self, request):
        return self._allowed(request, None, "change")

    @admin.action(description="Acknowledge the selected alerts", permissions=["act"])
    def acknowledge(self, request, queryset):
        by_workspace: dict = {}
        for alert in queryset.select_related("workspace"):
            if self._allowed(request, alert, "change"):
                by_workspace.setdefault(alert.workspace, []).append(alert.pk)
        count = sum(
            services.alerts_acknowledge(workspace=workspace, alert_ids=ids, actor=request.user)
            for workspace, ids in by_workspace.items()
        )
        self.message_user(request, f"{count} alert(s) acknowledged.", messages.SUCCESS)
