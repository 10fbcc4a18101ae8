"""The event rollups' part of a GDPR / CCPA erasure (guardrails.gdpr.erasers).

The erasure keeps the profile row and the events' names and times, so counts and funnels do not
move (docs/nudges-and-guardrails.md, "GDPR export and erasure"), and it empties the profile's
feature traits. The person's CohortMember and ActivityWeek rows are kept on the same terms (their
weeks still count in the cohorts, as their events do) and lose their segment values, as the profile
does; no other column names or describes the person. The erasure saves the profile without moving
updated_at, so the refresh would not see it: this eraser does it in the erasure's transaction.
Both tables are vacuumed after it (guardrails.gdpr.vacuum), so the old values leave the pages too.
"""

from analytics.models import SEGMENT_FIELDS, ActivityWeek, CohortMember
from guardrails.gdpr.erasers import ErasureScope, eraser
from guardrails.gdpr.vacuum import erased_models_register


@eraser("event_rollups")
def _erase_event_rollups(scope: ErasureScope) -> int:
    emptied = dict.fromkeys(SEGMENT_FIELDS, "")
    changed = 0
    for model in (CohortMember, ActivityWeek):
        changed += model.objects.filter(workspace=scope.workspace, end_user=scope.end_user).update(**emptied)
    return changed


erased_models_register(CohortMember, ActivityWeek)
