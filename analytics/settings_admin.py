"""Admin of a workspace's analytics settings (the activation window N). Changing N changes what
"activated" means for every enrollment already counted, so saving a new N queues a full rollup
rebuild (analytics.jobs.rebuild_rollups_job) instead of running it in the request: at a million
enrollments a rebuild takes minutes. Until it finishes the dashboards keep the old N's numbers.
"""

from django.contrib import admin, messages

from analytics.models import AnalyticsSettings
from core.jobs import enqueue
from tenancy.admin_bases import WorkspaceScopedAdmin
from tenancy.admin_filters import WorkspaceFilter

REBUILD_JOB = "analytics.jobs.rebuild_rollups_job"


@admin.register(AnalyticsSettings)
class AnalyticsSettingsAdmin(WorkspaceScopedAdmin):
    list_display = ("workspace", "activation_window_days")
    list_filter = (WorkspaceFilter,)
    list_select_related = ("workspace",)

    def get_readonly_fields(self, request, obj=None):
        return ("workspace",) if obj else ()

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if "activation_window_days" in form.changed_data or not change:
            enqueue(REBUILD_JOB, obj.workspace_id, queue="low")
            self.message_user(
                request,
                f"Activation window set to {obj.activation_window_days} days. The rollups are being "
                "rebuilt with it; the dashboards show the previous window's numbers until then.",
                messages.INFO,
            )
