"""Admin of a workspace's analytics settings (the activation window N). Changing N changes what
"activated" means for every enrollment already counted, so saving a new N calls the service, which
queues a full rollup rebuild (analytics.jobs.rebuild_rollups_job) instead of running it in the
request: at a million enrollments a rebuild takes minutes. Until it finishes the dashboards keep
the old N's numbers.
"""

from django.contrib import admin, messages

from analytics.models import AnalyticsSettings
from analytics.rollups import services as rollup_services
from tenancy.admin_bases import WorkspaceScopedAdmin
from tenancy.admin_filters import WorkspaceFilter


@admin.register(AnalyticsSettings)
class AnalyticsSettingsAdmin(WorkspaceScopedAdmin):
    list_display = ("workspace", "activation_window_days")
    list_filter = (WorkspaceFilter,)
    list_select_related = ("workspace",)

    def get_readonly_fields(self, request, obj=None):
        return ("workspace",) if obj else ()

    def save_model(self, request, obj, form, change):
        if change and "activation_window_days" not in form.changed_data:
            return
        days = obj.activation_window_days
        saved = rollup_services.activation_window_set(workspace=obj.workspace, days=days)
        obj.pk = saved.pk
        self.message_user(
            request,
            f"Activation window set to {obj.activation_window_days} days. The rollups are being "
            "rebuilt with it; the dashboards show the previous window's numbers until then.",
            messages.INFO,
        )
