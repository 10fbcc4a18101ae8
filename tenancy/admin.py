"""Admin of the tenant itself: workspaces (with their object permissions) and API keys.

A new workspace or key is created by tenancy.services, and its plain keys are shown once.
"""

from django.contrib import admin, messages
from django.template.response import TemplateResponse
from guardian.admin import ReinforcedGuardedModelAdminMixin

from tenancy import services
from tenancy.admin_bases import WorkspaceScopedAdmin
from tenancy.admin_filters import ApiKeyStatusFilter, WorkspaceFilter
from tenancy.models import ApiKey, Workspace


@admin.register(Workspace)
class WorkspaceAdmin(ReinforcedGuardedModelAdminMixin, WorkspaceScopedAdmin):
    # The reinforced mixin keeps the object permissions pages (who may see which workspace) to
    # superusers: a change grant alone would let an admin hand the workspace to anyone.
    list_display = ("name", "slug", "created_at")
    search_fields = ("name", "slug")
    readonly_fields = ("slug", "created_at")
    workspace_path = "pk"

    def _workspace_of(self, obj):
        return obj

    def get_queryset(self, request):
        queryset = admin.ModelAdmin.get_queryset(self, request)
        if request.user.is_superuser:
            return queryset
        return queryset.filter(pk__in=self._workspaces(request))

    def has_add_permission(self, request):
        return request.user.is_superuser

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        workspace, write_key, secret_key = services.workspace_create(name=obj.name, created_by=request.user)
        obj.pk, obj.slug, obj.created_at = workspace.pk, workspace.slug, workspace.created_at
        request._issued_keys = (write_key, secret_key)

    def response_add(self, request, obj, post_url_continue=None):
        issued = getattr(request, "_issued_keys", ())
        response = TemplateResponse(
            request,
            "admin/onboarding/workspace/created.html",
            {
                **self.admin_site.each_context(request),
                "workspace": obj,
                "issued": issued,
                "title": "Workspace created",
            },
        )
        response["Cache-Control"] = "no-store"
        return response


@admin.register(ApiKey)
class ApiKeyAdmin(WorkspaceScopedAdmin):
    list_display = ("name", "workspace", "short_kind", "prefix", "created_at", "last_used_at", "status")
    list_filter = ("kind", ApiKeyStatusFilter, WorkspaceFilter)
    list_select_related = ("workspace",)
    search_fields = ("name", "prefix")
    actions = ["revoke"]
    fields = (
        "workspace",
        "name",
        "kind",
        "prefix",
        "scopes",
        "created_at",
        "created_by",
        "last_used_at",
        "revoked_at",
    )

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ("prefix", "scopes", "created_at", "created_by", "last_used_at", "revoked_at")
        return (
            "workspace",
            "kind",
            "prefix",
            "scopes",
            "created_at",
            "created_by",
            "last_used_at",
            "revoked_at",
        )

    @admin.display(description="kind", ordering="kind")
    def short_kind(self, obj):
        return obj.kind  # the full label ("Write key (event ingestion, ...)") crowds the list

    @admin.display(description="status")
    def status(self, obj):
        return "revoked" if obj.revoked_at else "active"

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        issued = services.api_key_create(
            workspace=obj.workspace, name=obj.name, kind=obj.kind, created_by=request.user
        )
        for field in ApiKey._meta.concrete_fields:
            setattr(obj, field.attname, getattr(issued.api_key, field.attname))
        request._issued_key = issued

    def response_add(self, request, obj, post_url_continue=None):
        issued = request._issued_key
        response = TemplateResponse(
            request,
            "admin/onboarding/apikey/issued.html",
            {
                **self.admin_site.each_context(request),
                "api_key": issued.api_key,
                "key": issued.key,
                "title": "API key created",
            },
        )
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke selected keys", permissions=["change"])
    def revoke(self, request, queryset):
        revoked = 0
        for api_key in queryset.filter(revoked_at__isnull=True):
            if not self._allowed(request, api_key, "change"):
                self.message_user(request, f"You may not revoke {api_key}.", messages.ERROR)
                continue
            services.api_key_revoke(api_key=api_key, actor=request.user)
            revoked += 1
        self.message_user(request, f"Revoked {revoked} key(s).", messages.SUCCESS)
