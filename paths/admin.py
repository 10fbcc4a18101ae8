"""The path editor: paths, their versions and steps, scoped to the admin's granted workspaces.

Drafts are edited through the step inline; published and archived versions are read-only.
Publish, archive and clone-to-draft are buttons on a version's page and changelist actions; each
calls a service. Version history with a diff between any two versions, and a preview of what the
end user sees, are pages of their own.
"""

from django.contrib import admin, messages
from django.db.models import Count
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path as url_path
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from paths import selectors, services
from paths.editor.forms import PathForm
from paths.editor.versions import PathVersionAdmin, enrolled_text, version_url
from paths.models import Path, PathVersion
from tenancy.admin_bases import WorkspaceScopedAdmin
from tenancy.admin_filters import WorkspaceFilter

__all__ = ["PathAdmin", "PathVersionAdmin"]


# --- Paths ----------------------------------------------------------------------------------


@admin.register(Path)
class PathAdmin(WorkspaceScopedAdmin):
    form = PathForm
    list_display = ("name", "key", "workspace", "priority", "is_default", "live_version", "draft_version")
    list_filter = (WorkspaceFilter, "is_default")
    list_select_related = ("workspace",)
    search_fields = ("name", "key")
    fieldsets = (
        (None, {"fields": ("workspace", "key", "name", "description", "priority", "is_default")}),
        (
            "Audience (who gets this path)",
            {
                "fields": (
                    "audience_personas",
                    "audience_use_cases",
                    "audience_company_sizes",
                    "audience_signup_sources",
                )
            },
        ),
        ("Versions", {"fields": ("version_history",)}),
    )

    def get_fieldsets(self, request, obj=None):
        return self.fieldsets if obj else self.fieldsets[:2]

    def get_readonly_fields(self, request, obj=None):
        return ("workspace", "key", "version_history") if obj else ()

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("versions")

    @admin.display(description="live")
    def live_version(self, obj):
        live = [version for version in obj.versions.all() if version.status == PathVersion.Status.PUBLISHED]
        return f"v{live[0].number}" if live else "-"

    @admin.display(description="draft")
    def draft_version(self, obj):
        drafts = [version for version in obj.versions.all() if version.status == PathVersion.Status.DRAFT]
        return (
            format_html('<a href="{}">v{}</a>', version_url(drafts[0]), drafts[0].number) if drafts else "-"
        )

    @admin.display(description="version history")
    def version_history(self, obj):
        counts = selectors.version_enrollment_counts(workspace=obj.workspace, path=obj)
        versions = selectors.path_versions(workspace=obj.workspace, path=obj).annotate(
            step_count=Count("steps")
        )
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">v{}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>'
            '<td><a href="{}">preview</a></td></tr>',
            (
                (
                    version_url(version),
                    version.number,
                    version.status,
                    version.step_count,
                    version.published_at.strftime("%Y-%m-%d %H:%M") if version.published_at else "-",
                    enrolled_text(counts.get(version.pk, {})),
                    version_url(version, "preview"),
                )
                for version in versions
            ),
        )
        compare_url = reverse("admin:paths_path_compare", args=[obj.pk])
        return format_html(
            "<table><tr><th>version</th><th>status</th><th>steps</th><th>published</th>"
            "<th>enrolled</th><th></th></tr>{}</table>"
            '<p><a href="{}">Compare versions</a></p>',
            rows,
            compare_url,
        )

    def _audience(self, form) -> dict[str, list[str]]:
        return {feature: form.cleaned_data[field] for feature, field in Path.AUDIENCE_FIELDS.items()}

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if change:
            services.path_update(
                path=obj,
                name=data["name"],
                description=data["description"],
                audience=self._audience(form),
                priority=data["priority"],
                is_default=data["is_default"],
            )
            return
        created = services.path_create(
            workspace=data["workspace"],
            key=data["key"],
            name=data["name"],
            description=data["description"],
            audience=self._audience(form),
            priority=data["priority"],
            is_default=data["is_default"],
            created_by=request.user,
        )
        obj.pk, obj.created_at, obj.updated_at = created.pk, created.created_at, created.updated_at

    def response_add(self, request, obj, post_url_continue=None):
        draft = obj.versions.get(number=1)
        messages.success(request, f"Path “{obj.name}” created. Add its steps to draft v1, then publish it.")
        return HttpResponseRedirect(version_url(draft))

    def get_urls(self):
        return [
            url_path(
                "<path:object_id>/compare/",
                self.admin_site.admin_view(self.compare_view),
                name="paths_path_compare",
            ),
            *super().get_urls(),
        ]

    def compare_view(self, request, object_id):
        path = self.get_object(request, object_id)
        if path is None or not self.has_view_permission(request, path):
            raise Http404("No such path.")
        versions = list(
            selectors.path_versions(workspace=path.workspace, path=path).annotate(step_count=Count("steps"))
        )
        by_number = {version.number: version for version in versions}
        counts = selectors.version_enrollment_counts(workspace=path.workspace, path=path)
        for version in versions:
            version.enrolled = enrolled_text(counts.get(version.pk, {}))
        newest = versions[0] if versions else None
        default_old = next(
            (
                version
                for version in versions
                if version.status == PathVersion.Status.PUBLISHED and version != newest
            ),
            versions[1] if len(versions) > 1 else newest,
        )
        try:
            old = by_number[int(request.GET["old"])] if "old" in request.GET else default_old
            new = by_number[int(request.GET["new"])] if "new" in request.GET else newest
        except (KeyError, ValueError) as error:
            raise Http404("No such version.") from error
        changes = services.path_version_diff(old=old, new=new) if old and new else []
        return TemplateResponse(
            request,
            "admin/paths/path/compare.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "original": path,
                "path": path,
                "versions": versions,
                "old": old,
                "new": new,
                "changes": changes,
                "title": f"{path.name}: version history",
            },
        )
