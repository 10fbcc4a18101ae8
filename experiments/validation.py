"""The checks an experiment's writes share: arms, weights, metrics, audiences. Each refusal is a
ValidationError naming the field and the reason."""

from collections.abc import Mapping, Sequence
from typing import Any

from django.core.exceptions import ValidationError

from analytics.metrics.definitions import METRICS
from experiments.models import Experiment, Variant
from paths.models import Path, PathVersion
from tenancy.models import Workspace


def _normalised(values: Sequence[Any]) -> set[str]:
    return {str(value).strip().casefold() for value in values}


def audiences_overlap(first: Any, second: Any) -> bool:
    """Some user could be in both: no feature has two set lists without a value in common."""
    for field_name in Experiment.AUDIENCE_FIELDS.values():
        mine, theirs = getattr(first, field_name), getattr(second, field_name)
        if mine and theirs and not _normalised(mine) & _normalised(theirs):
            return False
    return True


def check_metrics(primary_metric: str, guardrail_metrics: Sequence[str]) -> None:
    unknown = [name for name in (primary_metric, *guardrail_metrics) if name not in METRICS]
    if unknown:
        field = "primary_metric" if primary_metric in unknown else "guardrail_metrics"
        raise ValidationError({field: f"unknown metric {unknown[0]!r}: see analytics' metric definitions"})


def check_weights(weights: Sequence[int]) -> None:
    if not weights or len(weights) < 2:
        raise ValidationError({"variants": "an experiment needs at least two variants"})
    if any(weight < 0 or weight > 100 for weight in weights):
        raise ValidationError({"variants": "each weight is a percent between 0 and 100"})
    if sum(weights) != 100:
        raise ValidationError({"variants": f"weights must sum to 100, not {sum(weights)}"})


def check_path_arm(workspace: Workspace, path: Path | None, version: PathVersion | None, key: str) -> None:
    if path is None:
        raise ValidationError({"path": "a path experiment needs its path"})
    if version is None:
        raise ValidationError({"variants": f"variant {key}: a path version is required"})
    if version.path.workspace_id != workspace.pk:
        raise ValidationError({"variants": f"variant {key}: the path version belongs to another workspace"})
    if version.path_id != path.pk:
        raise ValidationError(
            {
                "variants": f"variant {key}: v{version.number} is a version of "
                f"'{version.path.key}', not '{path.key}'"
            }
        )


def check_payloads(experiment: Experiment, variants: Sequence[Variant]) -> None:
    for variant in variants:
        if experiment.kind == Experiment.Kind.PATH:
            check_path_arm(experiment.workspace, experiment.path, variant.path_version, variant.key)
        elif experiment.kind == Experiment.Kind.TEMPLATE:
            template_version = variant.template_version
            if template_version is None:
                raise ValidationError({"variants": f"variant {variant.key}: a template version is required"})
            if template_version.template.workspace_id != experiment.workspace_id:
                raise ValidationError(
                    {"variants": f"variant {variant.key}: the template belongs to another workspace"}
                )
        elif not variant.model_version:
            raise ValidationError({"variants": f"variant {variant.key}: a model version is required"})


def check_audience_and_variants(
    audience: Mapping[str, Sequence[str]] | None, variants: Sequence[Mapping[str, Any]]
) -> None:
    unknown = set(audience or {}) - set(Experiment.AUDIENCE_FIELDS)
    if unknown:
        raise ValidationError({"audience": f"unknown feature {sorted(unknown)[0]!r}"})
    check_weights([int(variant["weight"]) for variant in variants])
    keys = [variant["key"] for variant in variants]
    if len(set(keys)) != len(keys):
        raise ValidationError({"variants": "variant keys must be distinct"})
