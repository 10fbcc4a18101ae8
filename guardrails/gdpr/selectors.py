"""Reads of the gdpr sub-package: who was erased, known only by the digests of their ids."""

from collections.abc import Iterable

from guardrails.models import Suppression
from guardrails.policy import subjects
from tenancy.models import Workspace


def erased_identifiers(
    *, workspace: Workspace | int, user_ids: Iterable[str] = (), anonymous_ids: Iterable[str] = ()
) -> tuple[set[str], set[str]]:
    """(erased user ids, erased anonymous ids) among those given: one query on the digests."""
    workspace_id = workspace if isinstance(workspace, int) else workspace.pk
    wanted: dict[str, tuple[str, str]] = {}
    for kind, values in ((subjects.USER_ID, user_ids), (subjects.ANONYMOUS_ID, anonymous_ids)):
        for value in values:
            if value and value.strip():
                wanted[subjects.subject_digest(workspace_id, kind, value)] = (kind, value)
    if not wanted:
        return set(), set()
    found = Suppression.objects.filter(
        workspace_id=workspace_id, channel="", reason=Suppression.Reason.ERASED, subject_digest__in=wanted
    ).values_list("subject_digest", flat=True)
    erased_users, erased_devices = set(), set()
    for digest in found:
        kind, value = wanted[digest]
        (erased_users if kind == subjects.USER_ID else erased_devices).add(value)
    return erased_users, erased_devices


def workspace_has_erasures(*, workspace_id: int) -> bool:
    return Suppression.objects.filter(workspace_id=workspace_id, reason=Suppression.Reason.ERASED).exists()
