"""The experiments section of a GDPR export (guardrails.gdpr.export).

Export: every assignment of the person, with its hash value. Erasure: no eraser. The rows stay,
as analytics' enrollment facts keep theirs, so arm counts and results do not move; an assignment
holds no trait, content or contact, only which arm and when (the decision reason, which is on
the enrollment, is erased by the enrollments' eraser).
"""

from experiments.models import Assignment
from guardrails.gdpr.export import Subject, exporter


@exporter("experiments")
def _experiments(subject: Subject) -> list[dict]:
    rows = (
        Assignment.objects.filter(workspace=subject.workspace, end_user=subject.end_user)
        .select_related("experiment", "variant__path_version__path")
        .order_by("assigned_at", "pk")
    )
    return [
        {
            "experiment": row.experiment.key,
            "experiment_name": row.experiment.name,
            "variant": row.variant.key,
            "assigned_at": row.assigned_at,
            "hash_value": row.hash_value,
            "path_version": (
                f"{row.variant.path_version.path.key} v{row.variant.path_version.number}"
                if row.variant.path_version is not None
                else None
            ),
        }
        for row in rows
    ]
