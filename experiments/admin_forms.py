"""The forms of "New experiment" in the admin: one for a path (its versions as arms), one for a
nudge template (its versions as arms). They only parse what was typed; every rule (weights summing
to 100, a version of another path, a key used twice...) is the service's, whose refusal the view
shows on the field it names.
"""

from collections.abc import Sequence

from django import forms
from django.db.models import QuerySet

from analytics.metrics.definitions import METRICS
from experiments.models import METRIC_CHOICES, Experiment
from nudges.models import NudgeTemplate, TemplateVersion
from paths.editor.forms import CommaListField
from paths.models import Path, PathVersion

MAX_ARMS = 6
# The guardrails the results compute per arm from the same enrollment facts (experiments/results.py).
GUARDRAIL_METRICS = ("onboarding_start_rate", "activation_rate")
_defaults = {field.name: field.default for field in Experiment._meta.fields}


class ExperimentSettingsForm(forms.Form):
    """What every experiment has, whatever its arms are."""

    key = forms.SlugField(max_length=80, help_text="Stable identifier, also the hashing seed.")
    name = forms.CharField(max_length=200, required=False, help_text="Empty: the key.")
    hypothesis = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False)
    traffic_percent = forms.FloatField(
        label="Traffic (%)",
        min_value=0,
        max_value=100,
        initial=100,
        help_text="Share of the audience entering the experiment; the others get the default.",
    )
    audience_personas = CommaListField(
        required=False, label="Personas", help_text="Comma-separated; empty: all."
    )
    audience_use_cases = CommaListField(required=False, label="Use cases", help_text="Empty: all.")
    audience_company_sizes = CommaListField(required=False, label="Company sizes", help_text="Empty: all.")
    audience_signup_sources = CommaListField(required=False, label="Signup sources", help_text="Empty: all.")
    primary_metric = forms.ChoiceField(choices=METRIC_CHOICES, initial="activation_rate")
    guardrail_metrics = forms.MultipleChoiceField(
        choices=[(name, name) for name in GUARDRAIL_METRICS],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="The decision job stops the experiment when an arm significantly harms one of these.",
    )
    minimum_sample_per_arm = forms.IntegerField(min_value=1, initial=_defaults["minimum_sample_per_arm"])
    minimum_duration_days = forms.IntegerField(min_value=0, initial=_defaults["minimum_duration_days"])
    maximum_duration_days = forms.IntegerField(min_value=1, initial=_defaults["maximum_duration_days"])

    def service_options(self) -> dict:
        """The cleaned settings as the service's keyword arguments."""
        data = self.cleaned_data
        return {
            "key": data["key"],
            "name": data["name"] or data["key"],
            "hypothesis": data["hypothesis"],
            "traffic_share": data["traffic_percent"] / 100,
            "audience": {
                feature: data[field_name]
                for feature, field_name in Experiment.AUDIENCE_FIELDS.items()
                if data[field_name]
            },
            "primary_metric": data["primary_metric"],
            "guardrail_metrics": [name for name in data["guardrail_metrics"] if name in METRICS],
            "minimum_sample_per_arm": data["minimum_sample_per_arm"],
            "minimum_duration_days": data["minimum_duration_days"],
            "maximum_duration_days": data["maximum_duration_days"],
        }


class ArmForm(forms.Form):
    """One row of the arms table: a version and its weight; a row without a version is no arm."""

    version = forms.ModelChoiceField(queryset=PathVersion.objects.none(), required=False)
    weight = forms.IntegerField(required=False, min_value=0, max_value=100, label="weight (%)")

    def clean(self):
        data = super().clean()
        if data.get("version") is not None and data.get("weight") is None:
            self.add_error("weight", "Give this arm a weight.")
        return data


class BaseArmFormSet(forms.BaseFormSet):
    def __init__(self, *args, versions: QuerySet, labels, **kwargs):
        self.versions, self.labels = versions, labels
        super().__init__(*args, **kwargs)

    def get_form_kwargs(self, index):
        return {}

    def _construct_form(self, index, **kwargs):
        form = super()._construct_form(index, **kwargs)
        form.fields["version"].queryset = self.versions
        form.fields["version"].label_from_instance = self.labels
        form.fields["version"].empty_label = "(no arm)"
        return form

    def arms(self) -> list[tuple[object, int]]:
        """(version, weight) of the filled rows, in order: the first is control."""
        return [
            (form.cleaned_data["version"], form.cleaned_data["weight"])
            for form in self.forms
            if form.cleaned_data.get("version") is not None
        ]


ArmFormSet = forms.formset_factory(ArmForm, formset=BaseArmFormSet, extra=0, max_num=MAX_ARMS)


def path_versions_for_arms(paths: QuerySet) -> QuerySet:
    """Versions a path experiment can run: published now, or published once and archived since.
    A draft (or a discarded one) is editable or never ran, so it is no arm."""
    return (
        PathVersion.objects.filter(path__in=paths, published_at__isnull=False)
        .exclude(status=PathVersion.Status.DRAFT)
        .select_related("path")
        .order_by("path__name", "-number")
    )


def path_version_label(version: PathVersion) -> str:
    return f"{version.path.name} v{version.number} ({version.status})"


def template_versions_for_arms(templates: QuerySet) -> QuerySet:
    """Template versions a second admin approved (active or not yet): their words are final."""
    return (
        TemplateVersion.objects.filter(
            template__in=templates,
            status__in=(TemplateVersion.Status.APPROVED, TemplateVersion.Status.ACTIVE),
        )
        .select_related("template")
        .order_by("template__name", "-number")
    )


def template_version_label(version: TemplateVersion) -> str:
    return f"{version.template.name} v{version.number} (variant {version.variant}, {version.status})"


def initial_arms(own_versions: Sequence, live_status: str) -> list[dict]:
    """The first rows offered: the live version as control, the newest other one as B, each 50%;
    the remaining versions listed empty-weighted, one row each, so that adding an arm is a choice."""
    ordered = sorted(own_versions, key=lambda version: (version.status != live_status, -version.number))
    rows = [{"version": version.pk, "weight": 50} for version in ordered[:2]]
    blank = {"version": None, "weight": None}
    return (rows + [dict(blank) for _ in range(max(2, len(ordered)) - len(rows))])[:MAX_ARMS]


def owner_choices(model: type[Path] | type[NudgeTemplate], workspaces: QuerySet) -> QuerySet:
    return model.objects.filter(workspace__in=workspaces).select_related("workspace").order_by("name")
