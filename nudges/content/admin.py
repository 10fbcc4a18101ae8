"""Admin of nudge templates and their versions: the draft editor, the approve / activate / retire /
new-draft buttons and changelist actions (each calls nudges.content.versions), the pre-approval
checks, the preview for an end user, and the per-variant rates on the template's page."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.template.loader import render_to_string
from django.urls import path as url_path
from django.urls import reverse
from django.views.decorators.http import require_POST

from nudges.content import checks as template_checks
from nudges.content import stats
from nudges.content import versions as templates_service
from nudges.content.forms import NudgeTemplateForm, TemplateVersionForm
from nudges.content.preview import preview_view
from nudges.models import NudgeTemplate, TemplateVersion, Trigger
from tenancy.admin_bases import WorkspaceScopedAdmin
from tenancy.admin_filters import WorkspaceFilter
from tenancy.version_workflow import VersionWorkflowMixin, workflow_action

Status = TemplateVersion.Status


def version_url(version: TemplateVersion, view: str = "change") -> str:
    return reverse(f"admin:nudges_templateversion_{view}", args=[version.pk])


def _label(version: TemplateVersion) -> str:
    return f"{version.template.name} v{version.number}"


def checks_summary(version: TemplateVersion) -> str:
    results = version.check_results or []
    if not results:
        return "not run"
    failed = [result["code"] for result in results if not result.get("passed")]
    warned = [result["code"] for result in results if result.get("passed") and result.get("warning")]
    if failed:
        return f"failed: {', '.join(failed)}"
    return f"passed (warnings: {', '.join(warned)})" if warned else "passed"


def percent(rate: float | None) -> str:
    return "-" if rate is None else f"{rate:.1%}"


def stats_row(counts: stats.VersionStats | stats.VariantStats, **labels) -> dict:
    return {
        **labels,
        "sent": counts.sent,
        "opened": counts.opened,
        "clicked": counts.clicked,
        "converted": counts.converted,
        "open_rate": percent(counts.open_rate),
        "click_rate": percent(counts.click_rate),
        "conversion_rate": percent(counts.conversion_rate),
        "bandit_sends": counts.bandit_sends,
        "bandit_rewards": counts.bandit_rewards,
    }


class VersionWorkspaceFilter(WorkspaceFilter):
    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(template__workspace_id=self.value())
        return queryset


@admin.register(NudgeTemplate)
class NudgeTemplateAdmin(WorkspaceScopedAdmin):
    form = NudgeTemplateForm
    change_form_template = "admin/nudges/nudgetemplate/change_form.html"
    list_display = ("name", "trigger", "channel", "persona", "locale", "active_variants", "workspace")
    list_filter = (WorkspaceFilter, "channel")
    list_select_related = ("workspace", "trigger")
    search_fields = ("name", "trigger__name")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("trigger", "name", "channel", "persona", "locale")
        return ("workspace", "trigger", "channel", "name", "persona", "locale", "versions", "performance")

    def get_readonly_fields(self, request, obj=None):
        return ("workspace", "trigger", "channel", "versions", "performance") if obj else ()

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("versions")

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        if db_field.name == "trigger":
            kwargs["queryset"] = Trigger.objects.filter(workspace__in=self._workspaces(request, "change"))
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    @admin.display(description="active")
    def active_variants(self, obj):
        active = [version for version in obj.versions.all() if version.status == Status.ACTIVE]
        return ", ".join(f"{version.variant} v{version.number}" for version in active) or "none"

    @admin.display(description="versions")
    def versions(self, obj):
        rows = obj.versions.select_related("created_by", "approved_by").order_by("-number")
        return render_to_string(
            "admin/nudges/nudgetemplate/versions.html",
            {"versions": [(version, version_url(version), checks_summary(version)) for version in rows]},
        )

    @admin.display(description="sends, opens, clicks, conversions")
    def performance(self, obj):
        rows = []
        for variant in stats.variant_stats(workspace=obj.workspace, template=obj):
            rows.append(stats_row(variant, variant=variant.variant, version="all", status="", total=True))
            rows += [
                stats_row(row, variant=row.variant, version=f"v{row.number}", status=row.status, total=False)
                for row in variant.versions
            ]
        return render_to_string("admin/nudges/nudgetemplate/stats.html", {"rows": rows})

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        data = form.cleaned_data
        created = templates_service.nudge_template_create(
            trigger=data["trigger"],
            name=data["name"],
            channel=data["channel"],
            persona=data["persona"],
            locale=data["locale"],
            actor=request.user,
        )
        obj.pk, obj.workspace_id, obj.created_at = created.pk, created.workspace_id, created.created_at

    def response_add(self, request, obj, post_url_continue=None):
        draft = obj.versions.get(number=1)
        messages.success(
            request, f"Template “{obj.name}” created. Write draft v1, then ask another admin to approve it."
        )
        return HttpResponseRedirect(version_url(draft))

    def get_urls(self):
        return [
            url_path(
                "<path:object_id>/new-draft/",
                self.admin_site.admin_view(require_POST(self.new_draft_view)),
                name="nudges_nudgetemplate_new_draft",
            ),
            *super().get_urls(),
        ]

    def new_draft_view(self, request, object_id):
        template = self.get_object(request, object_id)
        if template is None or not self.has_view_permission(request, template):
            raise Http404("No such template.")
        if not self._allowed(request, template, "change"):
            raise PermissionDenied
        draft = templates_service.template_version_create_draft(template=template, actor=request.user)
        messages.success(request, f"Draft v{draft.number} created from the latest version.")
        return HttpResponseRedirect(version_url(draft))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None and self._allowed(request, obj, "change"):
            context["new_draft_url"] = reverse("admin:nudges_nudgetemplate_new_draft", args=[obj.pk])
        return super().render_change_form(request, context, add, change, form_url, obj)


@admin.register(TemplateVersion)
class TemplateVersionAdmin(VersionWorkflowMixin, WorkspaceScopedAdmin):
    workspace_path = "template__workspace"
    workflow_url_prefix = "nudges_templateversion"
    workflow_workspace_path = "template__workspace"
    workflow_error = templates_service.TemplateError
    workflow_buttons_by_status = {
        Status.DRAFT: [("approve", "Approve"), ("retire", "Discard draft")],
        Status.APPROVED: [("activate", "Activate"), ("retire", "Retire"), ("new_draft", "New draft")],
        Status.ACTIVE: [("retire", "Retire"), ("new_draft", "New draft")],
        Status.RETIRED: [("new_draft", "New draft")],
    }
    form = TemplateVersionForm
    change_form_template = "admin/nudges/templateversion/change_form.html"
    list_display = (
        "__str__",
        "variant",
        "status",
        "checks",
        "created_by",
        "approved_by",
        "activated_at",
        "channel",
    )
    list_filter = ("status", "template__channel", VersionWorkspaceFilter)
    list_select_related = ("template", "template__workspace", "created_by", "approved_by")
    search_fields = ("template__name",)
    ordering = ("template__name", "-number")
    actions = ["approve", "activate", "retire", "new_draft"]
    INFO = (
        "template",
        "number",
        "status",
        "check_list",
        "created_by",
        "created_at",
        "approved_by",
        "approved_at",
        "activated_at",
        "retired_at",
        "sends",
        "rewards",
    )

    def get_fields(self, request, obj=None):
        return (*self.INFO[:3], "variant", "subject", "body", "cta_text", "cta_url", *self.INFO[3:])

    def get_readonly_fields(self, request, obj=None):
        if obj is not None and obj.status != Status.DRAFT:
            return (*self.INFO, "variant", "subject", "body", "cta_text", "cta_url")
        return self.INFO

    def has_add_permission(self, request):
        return False  # versions come from a new template (v1) or "new draft"

    def has_change_permission(self, request, obj=None):
        if obj is not None and obj.status != Status.DRAFT:
            return False  # approved, active and retired versions never change
        return super().has_change_permission(request, obj)

    @admin.display(description="channel", ordering="template__channel")
    def channel(self, obj):
        return obj.template.channel

    @admin.display(description="checks")
    def checks(self, obj):
        return checks_summary(obj)

    @admin.display(description="pre-approval checks")
    def check_list(self, obj):
        live = obj.status == Status.DRAFT  # a draft is checked against the settings as they are now
        if live:
            results = [result.as_dict() for result in template_checks.version_checks(version=obj)]
        else:
            results = obj.check_results or []
        return render_to_string(
            "admin/nudges/templateversion/checks.html", {"results": results, "live": live}
        )

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        saved = templates_service.template_version_update(
            version=obj,
            actor=request.user,
            variant=data["variant"],
            subject=data["subject"],
            body=data["body"],
            cta_text=data["cta_text"],
            cta_url=data["cta_url"],
        )
        failed = checks_summary(saved)
        if failed.startswith("failed"):
            messages.warning(request, f"Saved; the checks {failed}: fix them before asking for approval.")

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except templates_service.TemplateError as error:  # e.g. approved by someone else meanwhile
            messages.error(request, str(error))
            return HttpResponseRedirect(request.path)

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if obj is not None:
            context["version_actions"] = self.workflow_buttons(request, obj)
            context["preview_url"] = version_url(obj, "preview")
            context["template_url"] = reverse("admin:nudges_nudgetemplate_change", args=[obj.template_id])
        return super().render_change_form(request, context, add, change, form_url, obj)

    # Approve, activate, retire, new draft: one service call per version, from a button or the list.

    def run_approve(self, request, version) -> TemplateVersion:
        result = templates_service.template_version_approve(version=version, actor=request.user)
        self.message_user(request, f"{_label(version)} approved: it can be activated.", messages.SUCCESS)
        return result

    def run_activate(self, request, version) -> TemplateVersion:
        result = templates_service.template_version_activate(version=version, actor=request.user)
        message = f"{_label(version)} is active for variant {result.variant}."
        self.message_user(request, message, messages.SUCCESS)
        return result

    def run_retire(self, request, version) -> TemplateVersion:
        result = templates_service.template_version_retire(version=version, actor=request.user)
        self.message_user(request, f"{_label(version)} retired.", messages.SUCCESS)
        return result

    def run_new_draft(self, request, version) -> TemplateVersion:
        result = templates_service.template_version_create_draft(
            template=version.template, actor=request.user, source=version
        )
        message = f"Draft v{result.number} created from v{version.number}."
        self.message_user(request, message, messages.SUCCESS)
        return result

    approve = workflow_action("approve", "Approve selected drafts", "workflow")
    activate = workflow_action("activate", "Activate selected approved versions", "workflow")
    retire = workflow_action("retire", "Retire selected versions", "workflow")
    new_draft = workflow_action("new_draft", "New draft from selected versions", "workflow")

    def has_workflow_permission(self, request):
        return self._allowed(request, None, "change")

    def get_urls(self):
        return [
            self.workflow_route("preview", lambda request, object_id: preview_view(self, request, object_id)),
            *self.workflow_urls(("approve", "activate", "retire", "new_draft")),
            *super().get_urls(),
        ]
