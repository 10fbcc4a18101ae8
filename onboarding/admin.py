"""Admin: each admin user sees only the workspaces granted to them (django-guardian)."""

from django.contrib import admin
from django.utils.html import format_html, format_html_join
from rangefilter.filters import DateTimeRangeFilterBuilder

from onboarding.admin_filters import EventNameFilter, EventUserFilter
from onboarding.end_user_panels import end_user_panels
from onboarding.ingestion import event_store
from onboarding.ingestion import selectors as event_selectors
from onboarding.models import AnonymousIdentity, Event
from onboarding.progress import admin as progress_admin  # noqa: F401  (registers the progress admins)
from tenancy.admin_bases import ReadOnlyScopedAdmin
from tenancy.admin_filters import WorkspaceFilter
from tenancy.models import EndUser


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
