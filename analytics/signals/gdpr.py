"""The survey signals' sections of a GDPR export and erasure (guardrails.gdpr.export / erasers).

Signals live in object storage, not in the database: the person is found by the user id in the
object names (confirmed on each payload), within their workspace's prefix of this stage's store.
Export: every signal payload they sent. Erasure: their objects are deleted, and the written
reports that merged them are rewritten without them. A store that cannot be reached fails the
erasure (its transaction rolls back, the profile is not tombstoned), so a retry finds them again.
"""

from analytics.signals import selectors, services
from analytics.signals.storage import signals_storage
from guardrails.gdpr.erasers import ErasureScope, eraser
from guardrails.gdpr.export import Subject, exporter


@exporter("signals")
def _signals(subject: Subject) -> list[dict]:
    if not subject.user_id:
        return []
    found = selectors.signals_of_user(
        storage=signals_storage(), workspace_id=subject.workspace.pk, user_id=subject.user_id
    )
    return [document for _key, document in found]


@eraser("signals")
def _erase_signals(scope: ErasureScope) -> int:
    if not scope.identifiers.user_id:
        return 0
    return services.signals_of_user_erase(
        storage=signals_storage(), workspace_id=scope.workspace.pk, user_id=scope.identifiers.user_id
    )
