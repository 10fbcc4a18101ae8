"""The enrollment facts' part of a GDPR / CCPA erasure (guardrails.gdpr.erasers).

The erasure keeps the person's enrollments, steps and completions (counts and funnels do not move)
and empties the profile's segment traits. Their enrollment facts copy those traits per enrollment,
so this eraser re-reads the person's enrollments in the erasure's transaction: the facts lose the
traits and the rollups move their counts to the unknown segment, as a rebuild would. The erasure
saves the profile without moving updated_at, so the refresh would not see it.
"""

from analytics.models import EnrollmentFact, StepFact
from analytics.rollups import services
from guardrails.gdpr.erasers import ErasureScope, eraser
from guardrails.gdpr.vacuum import erased_models_register
from onboarding.progress import selectors as progress_selectors

erased_models_register(EnrollmentFact, StepFact)


@eraser("rollup_facts")
def _erase_rollup_facts(scope: ErasureScope) -> int:
    enrollment_ids = list(
        progress_selectors.enrollments_of_workspace(workspace=scope.workspace)
        .filter(end_user=scope.end_user)
        .values_list("pk", flat=True)
    )
    return services.rollups_enrollments_reread(workspace=scope.workspace, enrollment_ids=enrollment_ids)
