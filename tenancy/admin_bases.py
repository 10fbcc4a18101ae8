"""Admin bases for rows that belong to a workspace: each admin user sees only the workspaces
granted to them (django-guardian, "onboarding.view_workspace" / "onboarding.change_workspace").

Every app's admin builds on these; they know the workspace and nothing above tenancy.
"""

from django.contrib import admin

from tenancy import selectors


class WorkspaceScopedAdmin(admin.ModelAdmin):
    """Rows of the workspaces the user was granted: "view" to read, "change" to edit."""

    workspace_path = "workspace"

    def _workspaces(self, request, permission="view"):
        return selectors.workspaces_for_admin(user=request.user, permission=permission)

    def _workspace_of(self, obj):
        for part in self.workspace_path.split("__"):
            obj = getattr(obj, part)
        return obj

    def _allowed(self, request, obj, permission):
        if request.user.is_superuser:
            return True
        if obj is None:
            return self._workspaces(request, permission).exists()
        return request.user.has_perm(f"onboarding.{permission}_workspace", self._workspace_of(obj))

    def get_queryset(self, request):
        queryset = super().get_queryset(request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(**{f"{self.workspace_path}__in": self._workspaces(request)})

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_staff and self._allowed(request, None, "view")

    def has_view_permission(self, request, obj=None):
        return self._allowed(request, obj, "view")

    def has_change_permission(self, request, obj=None):
        return self._allowed(request, obj, "change")

    def has_add_permission(self, request):
        return self._allowed(request, None, "change")

    def has_delete_permission(self, request, obj=None):
        return False

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "workspace":
            kwargs["queryset"] = self._workspaces(request, "change")
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_changeform_initial_data(self, request):
        """An admin who may change exactly one workspace finds it chosen on every add form: the
        empty "---------" choice made their first save fail for nothing."""
        initial = super().get_changeform_initial_data(request)
        if self.workspace_path == "workspace" and "workspace" not in initial:
            workspaces = list(self._workspaces(request, "change").values_list("pk", flat=True)[:2])
            if len(workspaces) == 1:
                initial["workspace"] = workspaces[0]
        return initial


class ReadOnlyScopedAdmin(WorkspaceScopedAdmin):
    """Rows written by the system (events, decisions, logs): shown, never added or changed."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
