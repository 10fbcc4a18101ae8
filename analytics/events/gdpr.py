"""The event rollups' part of a GDPR / CCPA erasure (guardrails.gdpr.erasers).

The erasure keeps the profile row and the events' names and times, so counts and funnels do not
move (docs/nudges-and-guardrails.md, "GDPR export and erasure"), and it empties the profile's
feature traits. The person's CohortMember and ActivityWeek rows are kept on the same terms (their
weeks still count in the cohorts, as their events do) and lose their segment values, as the profile
does (their counts in CohortCount move to the empty segment); no other column names or describes
the person. The erasure saves the profile without moving
updated_at, so the refresh would not see it: this eraser does it in the erasure's transaction.
Both tables are vacuumed after it (guardrails.gdpr.vacuum), so the old values leave the pages too.
"""

from django.db import connection

from analytics.events import cohort_counts as counts
from analytics.models import SEGMENT_FIELDS, ActivityWeek, CohortCount, CohortMember
from guardrails.gdpr.erasers import ErasureScope, eraser
from guardrails.gdpr.vacuum import erased_models_register


@eraser("event_rollups")
def _erase_event_rollups(scope: ErasureScope) -> int:
    person = [scope.end_user.pk]
    emptied = dict.fromkeys(SEGMENT_FIELDS, "")
    with connection.cursor() as cursor:
        counts.people_counts_add(cursor, scope.workspace, person, -1)
        changed = CohortMember.objects.filter(end_user_id=scope.end_user.pk).update(**emptied)
        changed += ActivityWeek.objects.filter(end_user_id=scope.end_user.pk).update(**emptied)
        counts.people_counts_add(cursor, scope.workspace, person, 1)
    return changed


erased_models_register(CohortMember, ActivityWeek, CohortCount)
