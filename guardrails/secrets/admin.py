"""Admin of workspace secrets: a value is typed once, stored encrypted, and never shown again."""

from django import forms
from django.contrib import admin

from guardrails.models import WorkspaceSecret
from guardrails.secrets.services import workspace_secret_set
from tenancy.admin_bases import WorkspaceScopedAdmin
from tenancy.admin_filters import WorkspaceFilter


class WorkspaceSecretForm(forms.ModelForm):
    value = forms.CharField(
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        strip=False,
        required=False,
        help_text="Write-only: stored encrypted and never displayed. Leave empty to keep the current value.",
    )

    class Meta:
        model = WorkspaceSecret
        fields = ("workspace", "name")

    def clean(self):
        cleaned = super().clean()
        if self.instance.pk is None and not cleaned.get("value"):
            self.add_error("value", "A new secret needs a value.")
        return cleaned


@admin.register(WorkspaceSecret)
class WorkspaceSecretAdmin(WorkspaceScopedAdmin):
    form = WorkspaceSecretForm
    list_display = ("name", "workspace", "stored")
    list_filter = (WorkspaceFilter,)
    list_select_related = ("workspace",)
    search_fields = ("name",)

    def get_fields(self, request, obj=None):
        return ("workspace", "name", "value") if obj is None else ("workspace", "name", "stored", "value")

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else ("workspace", "name", "stored")

    def has_delete_permission(self, request, obj=None):
        return self._allowed(request, obj, "change")

    @admin.display(description="value")
    def stored(self, obj):
        return f"•••••••• set on {obj.updated_at:%Y-%m-%d %H:%M} UTC" if obj.updated_at else "-"

    def save_model(self, request, obj, form, change):
        value = form.cleaned_data.get("value")
        if not value:
            return  # nothing typed: the stored value stays
        saved = workspace_secret_set(workspace=obj.workspace, name=obj.name, value=value, actor=request.user)
        for field in WorkspaceSecret._meta.concrete_fields:
            setattr(obj, field.attname, getattr(saved, field.attname))
