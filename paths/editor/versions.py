"""Admin of path versions: the step editor of drafts, read-only published and archived versions,
publish / archive / clone-to-draft buttons and actions, and the end-user preview.

A draft's Publish button submits the editor's form: what is typed is saved first, then published,
so nothing unsaved is thrown away; a form with errors is shown again as typed, not published."""

import difflib

from django.contrib import admin, messages
from django.db.models import Count
from django.http import HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from paths import selectors, services
from paths.editor.forms import StepForm, StepFormSet, questions_text
from paths.models import PathVersion, Step
from paths.steps import STEP_FIELDS, duration_text, rule_text, step_as_dict
from tenancy.admin_bases import WorkspaceScopedAdmin
from tenancy.admin_filters import WorkspaceFilter
from tenancy.audit import refusal_note
from tenancy.selectors import workspaces_for_admin
from tenancy.version_workflow import VersionWorkflowMixin, workflow_action


def version_url(version: PathVersion, view: str = "change") -> str:
    return reverse(f"admin:paths_pathversion_{view}", args=[version.pk])


def enrolled_text(counts: dict[str, int]) -> str:
    parts = [f"{counts[status]} {status}" for status in selectors.enrollment_statuses() if counts.get(status)]
    return " · ".join(parts) or "none"


def warn_unknown_events(request, version: PathVersion) -> None:
    """Flag event names the workspace has not sent lately: usually a typo. Not refused, since a
    path is often built before the app sends its events."""
    workspace = version.path.workspace
    known = selectors.known_event_names(workspace=workspace)
    steps = selectors.steps_of_version(workspace=workspace, path_version=version)
    for step in steps.filter(completion=Step.Completion.EVENT).exclude(event_name=""):
        if step.event_name in known:
            continue
        message = (
            f"Step '{step.key}': no '{step.event_name}' event was tracked in {workspace.name} in the "
            f"last {selectors.KNOWN_EVENTS_DAYS} days. Check the spelling"
        )
        close = difflib.get_close_matches(step.event_name, known, n=1)
        message += f" (did you mean '{close[0]}'?)." if close else "."
        messages.warning(request, message)


class PathVersionWorkspaceFilter(WorkspaceFilter):
    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(path__workspace_id=self.value())
        return queryset


# --- Versions and steps ---------------------------------------------------------------------


class StepInline(admin.StackedInline):
    model = Step
    form = StepForm
    formset = StepFormSet
    extra = 1
    ordering = ("order", "pk")
    classes = ("paths-steps",)

    class Media:
        js = ("paths/step_editor.js",)

    fieldsets = (
        (None, {"fields": (("key", "order", "optional"), "title", "body", "expected_duration")}),
        ("What the user sees", {"fields": (("ui_component", "deep_link"),)}),
        (
            "Done when",
            {"fields": ("completion", ("event_name", "count"), "conditions", ("window", "window_anchor"))},
        ),
        ("Form questions (form steps)", {"fields": ("questions",)}),
    )

    def _workspace_allowed(self, request, obj, permission):
        if request.user.is_superuser:
            return True
        if obj is None:  # asked for the queryset: the steps of the page's version are wanted
            return workspaces_for_admin(user=request.user, permission=permission).exists()
        return request.user.has_perm(f"onboarding.{permission}_workspace", obj.path.workspace)

    def has_view_permission(self, request, obj=None):
        return self._workspace_allowed(request, obj, "view")

    def has_change_permission(self, request, obj=None):
        return obj is not None and obj.is_editable and self._workspace_allowed(request, obj, "change")

    has_add_permission = has_change_permission
    has_delete_permission = has_change_permission


class StepReadOnlyInline(admin.StackedInline):
    """Steps of a published or archived version, with the rule and questions in words."""

    model = Step
    extra = 0
    can_delete = False
    ordering = ("order", "pk")
    fields = ("key", "title", "body", "optional", "expected", "shown_as", "done_when", "questions_list")
    readonly_fields = fields

    def has_view_permission(self, request, obj=None):
        return True  # the version page itself is scoped; this only lists its steps

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="expected duration")
    def expected(self, step):
        return duration_text(step.expected_duration) if step.expected_duration else "-"

    @admin.display(description="shown as")
    def shown_as(self, step):
        label = step.get_ui_component_display()
        return f"{label} · {step.deep_link}" if step.deep_link else label

    @admin.display(description="done")
    def done_when(self, step):
        return rule_text(step_as_dict(step))

    @admin.display(description="questions")
    def questions_list(self, step):
        return questions_text(step.questions) or "-"


@admin.register(PathVersion)
class PathVersionAdmin(VersionWorkflowMixin, WorkspaceScopedAdmin):
    workspace_path = "path__workspace"
    workflow_url_prefix = "paths_pathversion"
    workflow_workspace_path = "path__workspace"
    workflow_error = services.PathError
    workflow_buttons_by_status = {
        PathVersion.Status.DRAFT: [("publish", "Publish"), ("archive", "Discard draft")],
        PathVersion.Status.PUBLISHED: [("clone", "Clone to draft"), ("archive", "Archive")],
        PathVersion.Status.ARCHIVED: [("clone", "Clone to draft")],
    }
    change_form_template = "admin/paths/pathversion/change_form.html"
    list_display = ("__str__", "status", "step_count", "enrolled", "published_at", "preview_link")
    list_filter = ("status", PathVersionWorkspaceFilter)
    list_select_related = ("path", "path__workspace")
    search_fields = ("path__name", "path__key")
    actions = ["publish", "archive", "clone_to_draft"]
    change_form_buttons = ("publish",)  # audited after the save (tenancy/admin_changes.py)
    inlines = [StepInline]
    fields = (
        "path",
        "number",
        "status",
        "changelog",
        "enrolled",
        "created_at",
        "created_by",
        "published_at",
        "published_by",
        "archived_at",
    )
    readonly_fields = (
        "path",
        "number",
        "status",
        "enrolled",
        "created_at",
        "created_by",
        "published_at",
        "published_by",
        "archived_at",
    )

    def get_inlines(self, request, obj):
        return [StepInline] if obj is None or obj.is_editable else [StepReadOnlyInline]

    def get_queryset(self, request):
        return selectors.with_enrollment_counts(super().get_queryset(request)).annotate(
            step_count=Count("steps", distinct=True)
        )

    def has_add_permission(self, request):
        return False  # versions come from a new path (v1) or from "clone to draft"

    def has_change_permission(self, request, obj=None):
        if obj is not None and not obj.is_editable:
            return False  # published and archived versions are immutable
        return super().has_change_permission(request, obj)

    @admin.display(description="steps", ordering="step_count")
    def step_count(self, obj):
        return obj.step_count

    @admin.display(description="users enrolled")
    def enrolled(self, obj):
        return enrolled_text(
            {status: getattr(obj, f"enrolled_{status}", 0) for status in selectors.enrollment_statuses()}
        )

    @admin.display(description="preview")
    def preview_link(self, obj):
        return format_html('<a href="{}">preview</a>', version_url(obj, "preview"))

    # Saving a draft: the changelog and the steps go through the services.

    def save_model(self, request, obj, form, change):
        services.path_version_update(path_version=obj, changelog=form.cleaned_data["changelog"])

    def save_formset(self, request, form, formset, change):
        formset.new_objects, formset.changed_objects, formset.deleted_objects = [], [], []
        for step_form in formset.deleted_forms:
            if step_form.instance.pk:
                services.step_delete(step=step_form.instance)
                formset.deleted_objects.append(step_form.instance)
        for step_form in formset.forms:
            if step_form in formset.deleted_forms or not step_form.has_changed():
                continue
            values = {field: step_form.cleaned_data[field] for field in (*STEP_FIELDS, "order")}
            if step_form.instance.pk:
                step = services.step_update(step=step_form.instance, **values)
                formset.changed_objects.append((step, step_form.changed_data))
            else:
                step = services.step_create(path_version=form.instance, **values)
                formset.new_objects.append(step)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        warn_unknown_events(request, form.instance)

    def changeform_view(self, request, object_id=None, form_url="", extra_context=None):
        try:
            return super().changeform_view(request, object_id, form_url, extra_context)
        except services.PathError as error:  # e.g. published by someone else meanwhile
            messages.error(request, str(error))
            return HttpResponseRedirect(request.path)

    def response_change(self, request, obj):
        if "_publish" not in request.POST:
            return super().response_change(request, obj)
        published = self.run_step(request, obj, "publish", saved_first=True)
        return HttpResponseRedirect(version_url(published or obj))

    def render_change_form(self, request, context, add=False, change=False, form_url="", obj=None):
        if request.method == "POST" and "_publish" in request.POST:
            messages.error(
                request,
                "Not published, and nothing was saved: correct the errors below (what you typed is "
                "kept), then publish again.",
            )
        if obj is not None:
            context["version_actions"] = self.workflow_buttons(request, obj)
            context["preview_url"] = version_url(obj, "preview")
            context["history_url"] = reverse("admin:paths_path_compare", args=[obj.path_id])
        return super().render_change_form(request, context, add, change, form_url, obj)

    # Publish, archive, clone: one service call per version, from a button or the list.

    def run_publish(self, request, version, *, saved_first: bool = False) -> PathVersion:
        result = services.path_version_publish(path_version=version, published_by=request.user)
        self.message_user(request, f"{version.path.name} v{version.number} published.", messages.SUCCESS)
        if not saved_first:  # the save has just warned
            warn_unknown_events(request, result)
        return result

    def run_archive(self, request, version) -> PathVersion:
        result = services.path_version_archive(path_version=version)
        self.message_user(request, f"{version.path.name} v{version.number} archived.", messages.SUCCESS)
        return result

    def run_clone(self, request, version) -> PathVersion:
        result = services.path_version_create_draft(source=version, created_by=request.user)
        message = f"{version.path.name} v{result.number} created as a draft from v{version.number}."
        self.message_user(request, message, messages.SUCCESS)
        return result

    def workflow_refused(self, request, version, error, *, saved_first: bool = False) -> None:
        """A refusal is shown and audited with its reason."""
        if isinstance(error, services.VersionInvalid):
            reason = "; ".join(error.errors)
            prefix = f"{version.path.name} v{version.number} cannot be published: "
            if saved_first:
                prefix = f"Your changes were saved, but {prefix}"
            message = prefix + reason
        else:
            reason = message = str(error)
        self.message_user(request, message, messages.ERROR)
        refusal_note(request, version, reason)

    publish = workflow_action("publish", "Publish selected drafts", "change")
    archive = workflow_action("archive", "Archive selected versions", "change")
    clone_to_draft = workflow_action("clone", "Clone selected versions to a new draft", "change")

    def get_urls(self):
        return [
            self.workflow_route("preview", self.preview_view),
            *self.workflow_urls(("publish", "archive", "clone")),
            *super().get_urls(),
        ]

    def preview_view(self, request, object_id):
        version = self.scoped_version(request, object_id)
        steps = []
        for step in selectors.steps_of_version(workspace=version.path.workspace, path_version=version):
            data = step_as_dict(step)
            steps.append(
                {
                    "step": step,
                    "rule": rule_text(data),
                    "duration": duration_text(step.expected_duration) if step.expected_duration else "",
                    "questions": step.questions if step.completion == Step.Completion.FORM else [],
                    "safe_link": step.deep_link.startswith(("/", "https://", "http://")),
                }
            )
        return TemplateResponse(
            request,
            "admin/paths/pathversion/preview.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "original": version,
                "version": version,
                "steps": steps,
                "title": f"Preview: {version.path.name} v{version.number}",
            },
        )
