"""GDPR / CCPA erasure of one person: the order of its steps, in transactions, and the events' job.

What each kind of data becomes is guardrails.gdpr.erasers (a registry an app added later fills
too); the events are scrubbed in batches by guardrails.gdpr.erasure_events, inline or as the RQ
job guardrails.jobs.gdpr_erase_events_job when the history is long. Erasure is idempotent: a
second call finds the user id erased and says so, and finishes any erasure whose events were left
unscrubbed (a job that died).
"""

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from django.db import transaction

from core.jobs import enqueue
from guardrails.gdpr import erased_guard as reimport
from guardrails.gdpr.erasers import ERASERS, ErasureScope, identifiers_read
from guardrails.gdpr.erasure_events import erase_events, is_tombstone, unfinished_profiles
from guardrails.models import Suppression
from guardrails.policy import subjects
from onboarding.models import Event
from tenancy.audit import audit_record
from tenancy.models import TOMBSTONE_PREFIX, EndUser, Workspace

logger = logging.getLogger(__name__)

ERASE_EVENTS_JOB = "guardrails.jobs.gdpr_erase_events_job"
"""Named, not imported: guardrails.jobs imports this module."""


def tombstone_new() -> str:
    return f"{TOMBSTONE_PREFIX}{uuid.uuid4().hex}"


@dataclass
class ErasureResult:
    """What an erasure did. `status`: "erased", "erasing" (events queued: `job_ids`),
    "already_erased" or "not_found"."""

    status: str
    end_user_ids: list[int] = field(default_factory=list)
    erased: dict[str, int] = field(default_factory=dict)
    events_total: int = 0
    events_erased: int = 0
    job_ids: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """The API's body: counts only, nothing that identifies the person."""
        body: dict[str, Any] = {
            "status": self.status,
            "erased": self.erased,
            "events": {"total": self.events_total, "erased": self.events_erased},
        }
        if self.job_ids:
            body["job_id"] = self.job_ids[0]
        return body


@transaction.atomic
def erasure_suppress(*, workspace: Workspace, user_id: str) -> bool:
    """Write the person's suppression ahead of the erasure, so that ingestion stops storing their
    events before their user id is freed (guardrails.gdpr.erased_guard); False when there is no such
    person. `erasure_start` writes it too: this step only makes the order safe."""
    if not user_id.strip() or is_tombstone(user_id):
        return False
    end_user = EndUser.objects.filter(workspace=workspace, external_id=user_id).first()
    if end_user is None:
        return False
    identifiers = replace(identifiers_read(end_user), contact_values=())
    ERASERS["suppression"](
        ErasureScope(workspace=workspace, end_user=end_user, tombstone="", identifiers=identifiers)
    )
    transaction.on_commit(lambda: reimport.forget(workspace_id=workspace.pk))
    return True


@transaction.atomic
def erasure_start(
    *, workspace: Workspace, user_id: str, actor=None, actor_label: str = "", request_id: str = ""
) -> ErasureResult:
    """Erase the person's identity and everything but their events' contents, in one
    transaction; their events are scrubbed next, by `erase_events` (inline or as a job)."""
    if not user_id.strip() or is_tombstone(user_id):
        return ErasureResult(status="not_found")
    # A concurrent erasure of the same person waits for this lock, then finds the user id gone.
    end_user = EndUser.objects.select_for_update().filter(workspace=workspace, external_id=user_id).first()
    if end_user is None:
        known = Suppression.objects.filter(
            workspace=workspace,
            channel="",
            reason=Suppression.Reason.ERASED,
            subject_digest=subjects.subject_digest(workspace, subjects.USER_ID, user_id),
        ).exists()
        return ErasureResult(status="already_erased" if known else "not_found")
    scope = ErasureScope(
        workspace=workspace,
        end_user=end_user,
        tombstone=tombstone_new(),
        identifiers=identifiers_read(end_user),
    )
    result = ErasureResult(status="erased", end_user_ids=[end_user.pk])
    for name, function in ERASERS.items():
        result.erased[name] = function(scope)
    result.events_total = Event.objects.filter(workspace=workspace, end_user=end_user).count()
    audit_record(
        workspace=workspace,
        action="data.erase",
        actor=actor,
        actor_label=actor_label,
        after={"end_user_id": end_user.pk, "erased": result.erased, "events": result.events_total},
        request_id=request_id,
    )
    transaction.on_commit(lambda: reimport.forget(workspace_id=workspace.pk))
    logger.info(
        "guardrails.gdpr.erasure.started",
        extra={"workspace_id": workspace.pk, "end_user_id": end_user.pk, "events": result.events_total},
    )
    return result


SWEPT = ("suppression", "contact", "anonymous_identities", "profile")
"""Erasers run again after the events: an ingestion batch that was waiting on the erasure's lock
may have written a contact, an anonymous id or traits to the profile in the meantime."""


def erasure_finish(
    *,
    end_user: EndUser,
    batch_size: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> int:
    """Scrub the erased profile's events, sweep what arrived meanwhile, record completion."""
    count = erase_events(end_user=end_user, batch_size=batch_size, on_progress=on_progress)
    with transaction.atomic():
        identifiers = identifiers_read(end_user)
        scope = ErasureScope(
            workspace=end_user.workspace,
            end_user=end_user,
            tombstone=end_user.external_id,
            identifiers=replace(identifiers, user_id=""),
        )
        for name in SWEPT:
            ERASERS[name](scope)
        audit_record(
            workspace=end_user.workspace,
            action="data.erase.completed",
            actor_label="system",
            after={"end_user_id": end_user.pk, "events": count},
        )
    return count


def erasure_events_enqueue(*, end_user_id: int) -> str:
    """Queue the scrubbing of an erased profile's events after commit; returns the RQ job's id
    (its meta holds the progress). Without Redis the job runs in this process instead."""
    job_id = f"gdpr-erase-{uuid.uuid4().hex}"
    enqueue(ERASE_EVENTS_JOB, end_user_id, job_options={"job_id": job_id})
    return job_id


def gdpr_erase(
    *,
    workspace: Workspace,
    user_id: str,
    actor=None,
    actor_label: str = "",
    request_id: str = "",
    batch_size: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
    inline_max_events: int | None = None,
) -> ErasureResult:
    """Erase the person known by `user_id` in this workspace.

    The suppression is committed first, and the erasure waits until no process can still be
    storing events under the user id (guardrails.gdpr.erased_guard.MEMO_SECONDS). Then everything else runs
    in one transaction: it finishes, or nothing of it is left (never a tombstoned profile whose
    events still carry the user id). Their events are scrubbed before returning, unless
    `inline_max_events` is given and the history is longer: then an RQ job does it (status
    "erasing", `job_id` set). Idempotent: an erased user id gives status "already_erased" (and
    unfinished erasures of the workspace are finished, each on its own: one that fails again is
    logged and left for the next call, not this caller's error); an unknown one "not_found", and
    nothing is written. A profile that an ingestion batch in flight re-created during an inline
    erasure is erased too."""
    if erasure_suppress(workspace=workspace, user_id=user_id):
        reimport.wait_for_every_process()
    erase = dict(batch_size=batch_size, on_progress=on_progress, inline_max_events=inline_max_events)
    with transaction.atomic():
        result = erasure_start(
            workspace=workspace, user_id=user_id, actor=actor, actor_label=actor_label, request_id=request_id
        )
        if result.status == "erased":
            _finish(result, EndUser.objects.filter(pk__in=result.end_user_ids), **erase)
            if not result.job_ids:
                again = erasure_start(
                    workspace=workspace, user_id=user_id, actor=actor, actor_label=actor_label
                )
                for end_user in EndUser.objects.filter(pk__in=again.end_user_ids):
                    result.end_user_ids.append(end_user.pk)
                    result.events_total += again.events_total
                    result.events_erased += erasure_finish(end_user=end_user, batch_size=batch_size)
    if result.status == "already_erased":
        for end_user in unfinished_profiles(workspace=workspace):
            try:
                with transaction.atomic():
                    _finish(result, [end_user], **erase)
            except Exception:
                logger.exception(
                    "guardrails.gdpr.erasure.unfinished_failed",
                    extra={"workspace_id": workspace.pk, "end_user_id": end_user.pk},
                )
    if result.job_ids and result.status == "erased":
        result.status = "erasing"
    return result


def _finish(
    result: ErasureResult,
    profiles,
    *,
    batch_size: int | None,
    on_progress: Callable[[int, int], None] | None,
    inline_max_events: int | None,
) -> None:
    """Scrub these erased profiles' events now, or queue a job for a history too long to wait for."""
    for end_user in profiles:
        pending = Event.objects.filter(workspace_id=end_user.workspace_id, end_user=end_user).count()
        if inline_max_events is not None and pending > inline_max_events:
            result.job_ids.append(erasure_events_enqueue(end_user_id=end_user.pk))
            continue
        result.events_erased += erasure_finish(
            end_user=end_user, batch_size=batch_size, on_progress=on_progress
        )
