"""Admin of nudges, scoped to the admin user's granted workspaces like every other admin.

This module: the workspace's nudge settings, triggers (their settings per kind, not JSON) and
channel providers (secrets stay in WorkspaceSecret: only their name and presence are shown).
Templates and their versions: nudges/content/admin.py; the nudge log and the dead-letter
list: nudges/delivery/admin.py.
"""

from django.contrib import admin
from django.utils.html import format_html

from guardrails.models import WorkspaceSecret
from nudges.admin_forms import ChannelProviderForm, NudgeSettingsForm, TriggerForm
from nudges.models import ChannelProvider, NudgeSettings, Trigger
from nudges.triggers import receivers as hooks
from tenancy.admin_bases import WorkspaceScopedAdmin
from tenancy.admin_filters import WorkspaceFilter


@admin.register(NudgeSettings)
class NudgeSettingsAdmin(WorkspaceScopedAdmin):
    form = NudgeSettingsForm
    list_display = (
        "workspace",
        "postal_address_set",
        "allowed_domains",
        "personalisation_enabled",
        "updated_at",
    )
    list_filter = (WorkspaceFilter,)
    list_select_related = ("workspace",)
    readonly_fields = ("updated_at",)

    def get_readonly_fields(self, request, obj=None):
        return ("workspace", "updated_at") if obj else ("updated_at",)

    @admin.display(description="postal address", boolean=True)
    def postal_address_set(self, obj):
        return bool(obj.postal_address.strip())

    @admin.display(description="allowed link domains")
    def allowed_domains(self, obj):
        return ", ".join(obj.allowed_link_domains or []) or "-"


def config_text(trigger: Trigger) -> str:
    """A trigger's settings in words."""
    config = trigger.config or {}
    Kind = Trigger.Kind
    if trigger.kind == Kind.MILESTONE:
        return (
            f"step {config['step']} completed" if config.get("step") else f"{config.get('percent')}% complete"
        )
    if trigger.kind in (Kind.INACTIVITY, Kind.REENGAGEMENT):
        days = config.get("days", 3 if trigger.kind == Kind.INACTIVITY else 14)
        return f"after {days} day{'s' if days != 1 else ''}"
    if trigger.kind == Kind.CUSTOM:
        conditions = " (with conditions)" if config.get("conditions_a") else ""
        return (
            f"{config.get('event_a')}{conditions} without {config.get('event_b')} "
            f"within {config.get('window_hours')} h"
        )
    return "-"


@admin.register(Trigger)
class TriggerAdmin(WorkspaceScopedAdmin):
    form = TriggerForm
    list_display = ("name", "kind", "settings", "channel_list", "purpose", "is_active", "workspace")
    list_filter = (WorkspaceFilter, "kind", "is_active")
    list_select_related = ("workspace",)
    search_fields = ("name",)
    readonly_fields = ("created_at", "updated_at")
    fieldsets = (
        (None, {"fields": ("workspace", "name", "kind", "channel_order", "purpose", "is_active")}),
        ("Inactivity and re-engagement", {"fields": ("days",)}),
        ("Milestone", {"fields": ("step", "percent")}),
        (
            "Custom: event A without event B within a time",
            {"fields": ("event_a", "conditions_a", "event_b", "window_hours")},
        ),
        ("History", {"fields": ("created_at", "updated_at")}),
    )

    def get_readonly_fields(self, request, obj=None):
        return ("workspace", "created_at", "updated_at") if obj else ("created_at", "updated_at")

    @admin.display(description="settings")
    def settings(self, obj):
        return config_text(obj)

    @admin.display(description="channels")
    def channel_list(self, obj):
        return " → ".join(obj.channels or []) or "-"

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        hooks.forget()  # this process notices the workspace's first trigger at once


@admin.register(ChannelProvider)
class ChannelProviderAdmin(WorkspaceScopedAdmin):
    form = ChannelProviderForm
    list_display = (
        "__str__",
        "channel",
        "provider",
        "priority",
        "region",
        "is_active",
        "breaker",
        "workspace",
    )
    list_filter = (WorkspaceFilter, "channel", "provider", "is_active")
    list_select_related = ("workspace",)
    fields = (
        "workspace",
        "channel",
        "provider",
        "priority",
        "region",
        "settings",
        "secret_name",
        "secret_status",
        "is_active",
        "consecutive_failures",
        "open_until",
        "last_error",
    )

    def get_readonly_fields(self, request, obj=None):
        status = ("secret_status", "consecutive_failures", "open_until", "last_error")
        return ("workspace", *status) if obj else status

    @admin.display(description="secret")
    def secret_status(self, obj):
        """Whether the named secret is stored; its value is never read here."""
        if obj is None or obj.pk is None or not obj.secret_name:
            return "none named"
        stored = WorkspaceSecret.objects.filter(workspace_id=obj.workspace_id, name=obj.secret_name).exists()
        if stored:
            return f"stored (workspace secret “{obj.secret_name}”)"
        return format_html(
            "<strong>missing</strong>: no workspace secret named “{}” (add it under Workspace secrets)",
            obj.secret_name,
        )

    @admin.display(description="circuit breaker")
    def breaker(self, obj):
        if obj.open_until:
            return f"open until {obj.open_until:%Y-%m-%d %H:%M} UTC"
        return f"closed ({obj.consecutive_failures} failures)" if obj.consecutive_failures else "closed"


from nudges.content import admin as admin_templates  # noqa: E402, F401  (register their admins)
from nudges.delivery import admin as admin_nudges  # noqa: E402, F401
