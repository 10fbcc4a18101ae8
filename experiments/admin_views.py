"""The experiment manager's own admin pages: "New experiment" from a path or a nudge template, the
status buttons of an experiment's page, and its results page. Each is a method of ExperimentAdmin
(experiments/admin.py) through this mixin, mounted behind the admin's password + TOTP and scoped
to the workspaces granted to the admin: another workspace's experiment is a 404, a workspace
granted for viewing only answers the buttons with a 403.

The pages hold no rule of their own: experiments.services creates and moves experiments and says
why it refuses; experiments.results computes the numbers; experiments.results_page lays them out.
"""

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib import messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path as url_path
from django.urls import reverse
from django.views.decorators.http import require_POST

from experiments import results as experiment_results
from experiments import results_page, services
from experiments.admin_forms import (
    ArmFormSet,
    ExperimentSettingsForm,
    initial_arms,
    owner_choices,
    path_version_label,
    path_versions_for_arms,
    template_version_label,
    template_versions_for_arms,
)
from experiments.dashboard import last_decision, next_evaluation
from experiments.models import Experiment
from nudges.models import NudgeTemplate, TemplateVersion
from paths.models import Path, PathVersion
from tenancy.audit import refusal_note

Status = Experiment.Status


def reasons(error: ValidationError) -> list[tuple[str, str]]:
    """(field, reason) pairs of a service's refusal."""
    if hasattr(error, "error_dict"):
        return [(field, " ".join(texts)) for field, texts in error.message_dict.items()]
    return [("", " ".join(error.messages))]


def reasons_text(error: ValidationError) -> str:
    return "; ".join(f"{field}: {reason}" if field else reason for field, reason in reasons(error))


@dataclass(frozen=True)
class NewExperimentKind:
    """What differs between an experiment on a path and one on a nudge template."""

    kind: str
    owner_model: type
    owner_field: str  # the query parameter and the label: "path" or "template"
    versions: Callable  # (owners queryset) -> versions offered as arms
    label: Callable  # version -> its label in the arm rows
    live_status: str  # the status of the version users get now: the default control

    def own_versions(self, owner) -> list:
        return [version for version in self.versions(self.owner_model.objects.filter(pk=owner.pk))]


KINDS = {
    "path": NewExperimentKind(
        Experiment.Kind.PATH,
        Path,
        "path",
        path_versions_for_arms,
        path_version_label,
        PathVersion.Status.PUBLISHED,
    ),
    "template": NewExperimentKind(
        Experiment.Kind.TEMPLATE,
        NudgeTemplate,
        "template",
        template_versions_for_arms,
        template_version_label,
        TemplateVersion.Status.ACTIVE,
    ),
}


def _create(spec: NewExperimentKind, owner, settings: dict, arms: list, user) -> Experiment:
    if spec.kind == Experiment.Kind.PATH:
        return services.create_path_experiment(
            path=owner,
            versions=[version for version, _ in arms],
            weights=[weight for _, weight in arms],
            owner=user,
            **settings,
        )
    variants = [
        {"key": chr(ord("A") + index), "weight": weight, "template_version": version}
        for index, (version, weight) in enumerate(arms)
    ]
    return services.experiment_create(
        workspace=owner.workspace, kind=spec.kind, variants=variants, owner=user, **settings
    )


class ExperimentPagesMixin:
    """Mixed into ExperimentAdmin (a WorkspaceScopedAdmin): its pages and their URLs."""

    def experiment_urls(self) -> list:
        view = self.admin_site.admin_view
        urls = [
            url_path(
                f"new/{name}/", view(self.new_experiment_view), {"kind": name}, name=f"experiments_new_{name}"
            )
            for name in KINDS
        ]
        urls.append(
            url_path(
                "<path:object_id>/results/", view(self.results_view), name="experiments_experiment_results"
            )
        )
        for step in self.STATUS_BUTTONS:
            urls.append(
                url_path(
                    f"<path:object_id>/{step}/",
                    view(require_POST(self._status_view(step))),
                    name=f"experiments_experiment_{step}",
                )
            )
        return urls

    # --- New experiment ------------------------------------------------------------------------

    def new_experiment_view(self, request, kind: str):
        spec = KINDS[kind]
        workspaces = self._workspaces(request, "change")
        if not workspaces.exists():
            raise PermissionDenied
        owners = owner_choices(spec.owner_model, workspaces)
        owner = None
        if request.GET.get(spec.owner_field):
            owner = get_object_or_404(owners, pk=request.GET[spec.owner_field])
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"New experiment on a {'path' if kind == 'path' else 'nudge template'}",
            "spec": spec,
            "owners": owners,
            "owner": owner,
            "refusal": [],
        }
        if owner is None:
            return TemplateResponse(request, "admin/experiments/experiment/new.html", context)
        versions = spec.versions(owners.filter(workspace=owner.workspace))
        own = spec.own_versions(owner)
        data = request.POST if request.method == "POST" else None
        form = ExperimentSettingsForm(data, initial=self._initial(spec))
        arms = ArmFormSet(
            data,
            prefix="arms",
            versions=versions,
            labels=spec.label,
            initial=None if data else initial_arms(own, spec.live_status),
        )
        if data is not None and form.is_valid() and arms.is_valid():
            try:
                experiment = _create(spec, owner, form.service_options(), arms.arms(), request.user)
            except ValidationError as error:
                context["refusal"] = self._show_refusal(form, error)
                messages.error(request, f"The experiment was not created: {reasons_text(error)}")
            else:
                self.log_addition(request, experiment, [{"added": {}}])
                messages.success(
                    request,
                    f"Experiment {experiment.key} created as a draft with {len(arms.arms())} arms:"
                    " check it, then start it.",
                )
                return HttpResponseRedirect(
                    reverse("admin:experiments_experiment_change", args=[experiment.pk])
                )
        context.update({"form": form, "arms": arms, "own_versions": own})
        return TemplateResponse(request, "admin/experiments/experiment/new.html", context)

    def _initial(self, spec: NewExperimentKind) -> dict:
        metric = "activation_rate" if spec.kind == Experiment.Kind.PATH else "nudge_conversion_rate"
        return {"primary_metric": metric}

    def _show_refusal(self, form, error: ValidationError) -> list[tuple[str, str]]:
        """Put each reason on the field it names; the others (the arms, the audience) are listed
        above the arms table by the template."""
        elsewhere = []
        for field, reason in reasons(error):
            shown = {"traffic_share": "traffic_percent"}.get(field, field)
            if shown in form.fields:
                form.add_error(shown, reason)
            else:
                elsewhere.append((field or "experiment", reason))
        return elsewhere

    # --- Start, stop, conclude, roll out --------------------------------------------------------

    STATUS_BUTTONS = {
        "start": ("Start", "started"),
        "stop": ("Stop", "stopped"),
        "conclude": ("Conclude", "concluded"),
        "rollout": ("Roll out the winner", "rolled out and concluded"),
    }
    BUTTONS_BY_STATUS = {
        Status.DRAFT: ("start",),
        Status.RUNNING: ("stop", "conclude", "rollout"),
        Status.STOPPED: ("conclude", "rollout"),
        Status.CONCLUDED: (),
    }

    def status_buttons(self, request, experiment: Experiment) -> list[tuple[str, str, str]]:
        """(step, url, label) of the buttons the experiment's status offers to those who may change it."""
        if not self.has_change_permission(request, experiment):
            return []
        return [
            (
                step,
                reverse(f"admin:experiments_experiment_{step}", args=[experiment.pk]),
                self.STATUS_BUTTONS[step][0],
            )
            for step in self.BUTTONS_BY_STATUS[experiment.status]
        ]

    def _run_step(self, request, experiment: Experiment, step: str) -> Experiment:
        if step == "rollout":
            return services.experiment_rollout(experiment=experiment, actor=request.user)
        return getattr(services, f"experiment_{step}")(experiment=experiment)

    def _status_view(self, step: str):
        def view(request, object_id):
            experiment = self.scoped_experiment(request, object_id)
            if not self.has_change_permission(request, experiment):
                raise PermissionDenied
            done = self.STATUS_BUTTONS[step][1]
            try:
                self._run_step(request, experiment, step)
            except ValidationError as error:
                reason = reasons_text(error)
                refusal_note(request, experiment, reason)
                self.message_user(request, f"{experiment.key} was not {done}: {reason}", messages.ERROR)
            else:
                self.message_user(request, f"{experiment.key} {done}.", messages.SUCCESS)
            return HttpResponseRedirect(reverse("admin:experiments_experiment_change", args=[experiment.pk]))

        view.__name__ = f"{step}_view"
        return view

    def scoped_experiment(self, request, object_id) -> Experiment:
        """The experiment, or 404 where it does not exist or lies in a workspace not granted."""
        experiment = self.get_object(request, object_id)
        if experiment is None or not self.has_view_permission(request, experiment):
            raise Http404("No such experiment.")
        return experiment

    # --- Results ----------------------------------------------------------------------------------

    def results_view(self, request, object_id):
        experiment = self.scoped_experiment(request, object_id)
        results = experiment_results.experiment_results(experiment)  # a concluded one: the frozen copy
        page = results_page.build(experiment_results.results_as_dict(results))
        export = request.GET.get("export")
        if export:
            table = next((each for each in page["tables"] if each.key == export), None)
            if table is None:
                raise Http404(f"No table {export!r} on this page.")
            response = HttpResponse(table.csv(), content_type="text/csv; charset=utf-8")
            response["Content-Disposition"] = f'attachment; filename="{experiment.key}-{table.key}.csv"'
            return response
        decision = last_decision(experiment)
        context = {
            **self.admin_site.each_context(request),
            **page,
            "opts": self.opts,
            "original": experiment,
            "experiment": experiment,
            "title": f"Results of {experiment.name or experiment.key}",
            "frozen": results.frozen,
            "decision": decision,
            "next_evaluation": next_evaluation(experiment, decision),
            "buttons": self.status_buttons(request, experiment),
            "arms_of_experiment": list(
                experiment.variants.select_related("path_version", "template_version")
            ),
        }
        return TemplateResponse(request, "admin/experiments/experiment/results.html", context)
