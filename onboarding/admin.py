"""Admin: each admin user sees only the workspaces granted to them (django-guardian)."""

from django.contrib import admin, messages
from django.template.response import TemplateResponse
from django.utils.html import format_html, format_html_join
from guardian.admin import ReinforcedGuardedModelAdminMixin
from rangefilter.filters import DateTimeRangeFilterBuilder

from onboarding import selectors, services
from onboarding.end_user_panels import end_user_panels
from onboarding.ingestion import event_store
from onboarding.ingestion import selectors as event_selectors
from onboarding.models import AnonymousIdentity, Event
from tenancy.admin_filters import ApiKeyStatusFilter, EventNameFilter, EventUserFilter, WorkspaceFilter
from tenancy.models import ApiKey, EndUser, Workspace


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
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


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


class AnonymousIdentityInline(admin.TabularInline):
    model = AnonymousIdentity
    fields = ("anonymous_id", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(EndUser)
class EndUserAdmin(ReadOnlyScopedAdmin):
    list_display = ("__str__", "workspace", "persona", "company_size", "signup_source", "created_at")
    list_filter = (WorkspaceFilter, "persona", "company_size", "signup_source")
    list_select_related = ("workspace",)
    search_fields = ("external_id", "anonymous_identities__anonymous_id")
    readonly_fields = (
        "workspace",
        "external_id",
        "persona",
        "signup_source",
        "company_size",
        "use_case",
        "locale",
        "timezone",
        "group_id",
        "traits",
        "contact_on_file",
        "created_at",
        "updated_at",
        "onboarding",
        "recent_events",
    )
    fields = readonly_fields
    inlines = [AnonymousIdentityInline]
    show_full_result_count = False

    # The panels of the apps above (guardrail decisions, the nudges timeline), registered in
    # their AppConfig.ready(): shown after the page's own fields.
    def get_fields(self, request, obj=None):
        return (*super().get_fields(request, obj), *end_user_panels())

    def get_readonly_fields(self, request, obj=None):
        return (*super().get_readonly_fields(request, obj), *end_user_panels())

    @admin.display(description="contact on file")
    def contact_on_file(self, obj):
        """Which channels can reach the user; the values themselves stay out of the admin."""
        contact = getattr(obj, "contact", None)
        if contact is None:
            return "none"
        present = [
            label
            for label, value in (
                ("email", contact.email),
                ("phone", contact.phone),
                ("name", contact.name),
                ("address", contact.address),
            )
            if value
        ]
        return ", ".join(present) or "none"

    @admin.display(description="onboarding")
    def onboarding(self, obj):
        """Each enrollment with the planner's reason: why this user is on this path."""
        enrollments = obj.enrollments.select_related("path_version__path").order_by("-enrolled_at")
        rows = format_html_join(
            "",
            "<tr><td>{} v{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    enrollment.path_version.path.name,
                    enrollment.path_version.number,
                    enrollment.status,
                    enrollment.current_step_key or "-",
                    enrollment.revision,
                    enrollment.decision_reason,
                )
                for enrollment in enrollments
            ),
        )
        if not rows:
            return "not enrolled"
        return format_html(
            "<table><tr><th>path</th><th>status</th><th>current step</th><th>revision</th>"
            "<th>why this path</th></tr>{}</table>",
            rows,
        )

    @admin.display(description="recent events")
    def recent_events(self, obj):
        events = event_selectors.events_for_end_user(workspace=obj.workspace, end_user=obj)
        events = events.order_by("-timestamp")[:25]
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            ((event.timestamp.strftime("%Y-%m-%d %H:%M:%S"), event.type, event.name) for event in events),
        )
        return format_html("<table><tr><th>time</th><th>type</th><th>name</th></tr>{}</table>", rows)


@admin.register(Event)
class EventAdmin(ReadOnlyScopedAdmin):
    list_display = ("timestamp", "type", "name", "user_id", "anonymous_id", "workspace")
    list_filter = (
        EventNameFilter,
        EventUserFilter,
        ("timestamp", DateTimeRangeFilterBuilder(title="time")),
        "type",
        WorkspaceFilter,
    )
    list_select_related = ("workspace",)
    # Facet counts would count the whole event table once per filter choice.
    show_facets = admin.ShowFacets.NEVER
    ordering = ("-id",)
    show_full_result_count = False
    readonly_fields = event_store.FIELDS  # every stored column, in one list with ingestion and export
    fields = readonly_fields


from onboarding.progress import admin as admin_progress  # noqa: E402, F401  (registers the progress admins)
