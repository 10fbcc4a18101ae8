"""The workflow buttons and changelist actions of a versioned admin: publish / archive / clone of a
path version, approve / activate / retire / new draft of a nudge template version.

Both run a step the same way: one service call per version, from a button on the version's page or
from the changelist for each selected version the admin may change, the outcome shown as a message
and the page redirected to the version to look at next. The admin says which steps it has and what
each does; this module routes, scopes and reports them, so the two workflows cannot drift apart."""

from collections.abc import Callable

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponseRedirect
from django.urls import path as url_path
from django.urls import reverse
from django.views.decorators.http import require_POST


def workflow_action(step: str, description: str, permission: str) -> Callable:
    """A changelist action running `step` on every selected version."""

    @admin.action(description=description, permissions=[permission])
    def action(modeladmin, request, queryset):
        modeladmin.run_selected(request, queryset, step)

    action.__name__ = step
    return action


class VersionWorkflowMixin:
    """For a workspace-scoped admin of versions (it provides `_allowed`). The admin sets:

    * `workflow_url_prefix`: its URL names, "<prefix>_<step>" ("paths_pathversion");
    * `workflow_workspace_path`: the relation joined to check the selected versions' workspace;
    * `workflow_buttons_by_status`: {status: [(step, label), ...]}, the buttons a version shows;
    * `workflow_error`: the services' refusal, shown instead of the step's outcome;

    and defines `run_<step>(request, version)` for each step: the service call and its success
    message, returning the version to show next."""

    workflow_url_prefix: str
    workflow_workspace_path: str
    workflow_buttons_by_status: dict
    workflow_error: type[Exception]

    def workflow_url(self, version, view: str = "change") -> str:
        return reverse(f"admin:{self.workflow_url_prefix}_{view}", args=[version.pk])

    def workflow_buttons(self, request, version) -> list[tuple[str, str, str]]:
        """(step, url, label) of the buttons its status offers; none to those who may not change it."""
        if not self._allowed(request, version, "change"):
            return []
        buttons = self.workflow_buttons_by_status[version.status]
        return [(step, self.workflow_url(version, step), label) for step, label in buttons]

    def run_step(self, request, version, step: str, **options):
        """Run one step on one version; on a refusal say why and return None."""
        try:
            return getattr(self, f"run_{step}")(request, version, **options)
        except self.workflow_error as error:
            self.workflow_refused(request, version, error, **options)
            return None

    def workflow_refused(self, request, version, error: Exception, **options) -> None:
        self.message_user(request, str(error), messages.ERROR)

    def run_selected(self, request, queryset, step: str) -> None:
        for version in queryset.select_related(self.workflow_workspace_path):
            if not self._allowed(request, version, "change"):
                self.message_user(request, f"You may not change {version}.", messages.ERROR)
                continue
            self.run_step(request, version, step)

    def scoped_version(self, request, object_id):
        """The version, or 404 where it does not exist or lies in a workspace the user cannot see."""
        version = self.get_object(request, object_id)
        if version is None or not self.has_view_permission(request, version):
            raise Http404("No such version.")
        return version

    def workflow_route(self, name: str, view: Callable):
        return url_path(
            f"<path:object_id>/{name.replace('_', '-')}/",
            self.admin_site.admin_view(view),
            name=f"{self.workflow_url_prefix}_{name}",
        )

    def workflow_urls(self, steps: tuple[str, ...]) -> list:
        """One POST-only route per step: its button."""
        return [self.workflow_route(step, require_POST(self._button_view(step))) for step in steps]

    def _button_view(self, step: str) -> Callable:
        def view(request, object_id):
            version = self.scoped_version(request, object_id)
            if not self._allowed(request, version, "change"):
                raise PermissionDenied
            result = self.run_step(request, version, step)
            return HttpResponseRedirect(self.workflow_url(result or version))

        view.__name__ = f"{step}_view"
        return view
