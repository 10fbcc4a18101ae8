"""The model registry's buttons: Shadow, Start A/B, Promote, Promote with override (a form asking
for the reason), Retire and "Roll back <name>", each a POST to a URL of the version (so the admin's
audit records it too), behind the admin's password + TOTP, scoped to the workspaces granted:
another workspace's version is a 404, a workspace granted for viewing only answers with a 403.

The views hold no rule: ml.registry.services moves the version or refuses with the reason, shown
as an error message.
"""

from collections.abc import Callable

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import path as url_path
from django.urls import reverse
from django.views.decorators.http import require_POST

from ml.admin_forms import OverrideForm
from ml.models import ModelVersion
from ml.registry import selectors, services
from tenancy.audit import refusal_note

Status = ModelVersion.Status
OFFERED_TO = (Status.CANDIDATE, Status.SHADOW, Status.AB)


def reasons_text(error: ValidationError) -> str:
    if hasattr(error, "error_dict"):
        return "; ".join(f"{field}: {' '.join(texts)}" for field, texts in error.message_dict.items())
    return " ".join(error.messages)


def _rollback(request, version: ModelVersion) -> ModelVersion:
    return services.model_rollback(workspace=version.workspace, name=version.name, actor=request.user)


# step -> (label, done, statuses offering it, the service called with the version and the request)
STEPS: dict[str, tuple[str, str, tuple[str, ...], Callable]] = {
    "shadow": (
        "Shadow",
        "moved to shadow",
        (Status.CANDIDATE,),
        lambda request, version: services.model_to_shadow(model_version=version, actor=request.user),
    ),
    "ab": (
        "Start A/B",
        "put in an A/B against the active policy",
        (Status.CANDIDATE, Status.SHADOW),
        lambda request, version: services.model_ab_start(model_version=version, actor=request.user),
    ),
    "promote": (
        "Promote",
        "promoted",
        OFFERED_TO,
        lambda request, version: services.model_promote(model_version=version, actor=request.user),
    ),
    "retire": (
        "Retire",
        "retired",
        (*OFFERED_TO, Status.ACTIVE),
        lambda request, version: services.model_retire(model_version=version, actor=request.user),
    ),
    "rollback": ("Roll back", "rolled back", (Status.ACTIVE,), _rollback),
}


class ModelVersionPagesMixin:
    """Mixed into ModelVersionAdmin (a WorkspaceScopedAdmin): its buttons and their URLs."""

    def version_urls(self) -> list:
        view = self.admin_site.admin_view
        urls = [
            url_path(
                f"<path:object_id>/{step}/",
                view(require_POST(self._step_view(step))),
                name=f"ml_modelversion_{step}",
            )
            for step in STEPS
        ]
        urls.append(
            url_path("<path:object_id>/override/", view(self.override_view), name="ml_modelversion_override")
        )
        return urls

    def may_act(self, request, version: ModelVersion | None = None) -> bool:
        """Transitions need the "change" grant on the version's workspace."""
        return self._allowed(request, version, "change")

    def has_act_permission(self, request) -> bool:  # changelist actions' allowed_permissions
        return self.may_act(request)

    def rollback_label(self, version: ModelVersion) -> str:
        return f"Roll back {version.name} (to {version.replaced.version})"

    def buttons(self, request, version: ModelVersion) -> list[tuple[str, str, str]]:
        """(step, url, label) of what this version's status offers to those who may act."""
        if not self.may_act(request, version):
            return []
        found = []
        for step, (label, _, statuses, _) in STEPS.items():
            if version.status not in statuses or (step == "rollback" and version.replaced_id is None):
                continue
            if step == "ab" and version.name not in selectors.AB_SERVED_MODELS:
                continue
            if step == "rollback":
                label = self.rollback_label(version)
            found.append((step, reverse(f"admin:ml_modelversion_{step}", args=[version.pk]), label))
            if step == "promote":
                found.append(
                    (
                        "override",
                        reverse("admin:ml_modelversion_override", args=[version.pk]),
                        "Promote with override",
                    )
                )
        return found

    def rollback_buttons(self, request) -> list[tuple[str, str]]:
        """(url, label) of "Roll back <name>" for each model an admin may roll back (list page)."""
        workspaces = self._workspaces(request, "change")
        return [
            (
                reverse("admin:ml_modelversion_rollback", args=[version.pk]),
                f"{self.rollback_label(version)}, {version.workspace}",
            )
            for version in selectors.rollbacks(workspaces=workspaces)
        ]

    def scoped_version(self, request, object_id, *, act: bool) -> ModelVersion:
        version = self.get_object(request, object_id)
        if version is None:
            raise Http404("No such model version.")
        if act and not self.may_act(request, version):
            raise PermissionDenied
        return version

    def _back(self, version: ModelVersion) -> HttpResponseRedirect:
        return HttpResponseRedirect(reverse("admin:ml_modelversion_change", args=[version.pk]))

    def _step_view(self, step: str):
        def view(request, object_id):
            version = self.scoped_version(request, object_id, act=True)
            done = STEPS[step][1]
            try:
                result = STEPS[step][3](request, version)
            except ValidationError as error:
                reason = reasons_text(error)
                refusal_note(request, version, reason)
                self.message_user(request, f"{version.label} was not {done}: {reason}", messages.ERROR)
                return self._back(version)
            if step == "rollback":
                self.message_user(
                    request, f"{version.label} retired, {result.label} is active again.", messages.SUCCESS
                )
                return self._back(result)
            self.message_user(request, f"{version.label} {done}.", messages.SUCCESS)
            return self._back(version)

        view.__name__ = f"{step}_view"
        return view

    def override_view(self, request, object_id):
        """The reason first; the promotion check's verdict is shown above the form."""
        version = self.scoped_version(request, object_id, act=True)
        form = OverrideForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                services.model_promote(
                    model_version=version, actor=request.user, override_reason=form.cleaned_data["reason"]
                )
            except ValidationError as error:
                reason = reasons_text(error)
                refusal_note(request, version, reason)
                self.message_user(request, f"{version.label} was not promoted: {reason}", messages.ERROR)
            else:
                self.message_user(request, f"{version.label} promoted with an override.", messages.SUCCESS)
            return self._back(version)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "original": version,
            "title": f"Promote {version.label} with an override",
            "form": form,
            "check": selectors.promotion_check(workspace=version.workspace, model_version=version),
            "active": selectors.active_version(workspace=version.workspace, name=version.name),
        }
        return TemplateResponse(request, "admin/ml/modelversion/override.html", context)
