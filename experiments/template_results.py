"""Counts per arm of a nudge-template experiment, for its results (experiments.results).

A user counts as converted in an arm when a nudge of that arm's template version, sent to them
at or after their assignment, converted (nudges' counting rule: nudges.selectors.nudges_converted,
the one the dashboards count with). A nudge sent before the assignment (the same version picked
by the bandit before the experiment) is not the experiment's doing, so it does not count.
"""

from django.db.models import Count, Exists, OuterRef

from experiments.models import Assignment, Experiment
from nudges import selectors as nudge_selectors


def arm_counts(experiment: Experiment) -> dict[int, tuple[int, int]]:
    """Variant id -> (users assigned, users who converted after a nudge of that arm), every arm
    present (zeros when empty); one GROUP BY with an EXISTS per assignment. An arm without a
    template version (a path or model experiment) converts nobody here."""
    converted = nudge_selectors.nudges_converted(workspace_id=experiment.workspace_id).filter(
        end_user_id=OuterRef("end_user_id"),
        template_version_id=OuterRef("variant__template_version_id"),
        sent_at__gte=OuterRef("assigned_at"),
    )
    rows = (
        Assignment.objects.filter(experiment=experiment, workspace_id=experiment.workspace_id)
        .values("variant_id")
        .annotate(assigned=Count("pk"), converted=Count("pk", filter=Exists(converted)))
        .order_by("variant_id")
    )
    counts = {variant_id: (0, 0) for variant_id in experiment.variants.values_list("pk", flat=True)}
    counts.update({row["variant_id"]: (row["assigned"], row["converted"]) for row in rows})
    return counts
