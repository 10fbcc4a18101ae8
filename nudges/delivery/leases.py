"""Who holds a nudge: a job's lease on its batch, a worker's claim on one nudge, and the sweep
that hands on every nudge whose lease ran out.

A job leases its nudges when it starts (one UPDATE, under a token of its own); each nudge is then
claimed with a conditional UPDATE that renews its lease, so two workers never process it at once.
A worker that dies leaves leases that run out: `process_due` (every minute) queues those nudges
again at once, a queued one to be sent and an in-flight one to be reconciled (nudges.delivery.attempts),
with no threshold of its own beyond the lease.
"""

import secrets
from datetime import datetime

from django.db.models import F, Q
from django.utils import timezone

from nudges.delivery.attempts import lease
from nudges.delivery.dispatch import pipeline_enqueue
from nudges.models import Nudge

Status = Nudge.Status
# Claimable: queued, deferred and due, or in flight (its lease ran out: to reconcile).
CLAIMABLE = (Status.QUEUED, Status.DEFERRED, Status.IN_FLIGHT)


def lease_batch(nudge_ids: list[int], now: datetime) -> str:
    """Lease a job's nudges as it starts, under a token of its own: if the job dies, every nudge
    it had not finished is picked up by the due sweep as soon as the lease runs out."""
    token = secrets.token_hex(16)
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    Nudge.objects.filter(free, pk__in=nudge_ids, status=Status.QUEUED).update(
        claimed_until=now + lease(), lease_token=token
    )
    return token


def claim(nudge_id: int, now: datetime, token: str = "") -> Nudge | None:
    """The nudge, leased to this worker, when it is due and no other worker holds it.

    One conditional UPDATE takes the lease: of workers racing for a nudge exactly one wins, and
    one that comes later finds it leased (or no longer due). A worker that dies leaves a lease
    that runs out, and the due sweep hands the nudge on.
    """
    due = Q(status__in=(Status.QUEUED, Status.IN_FLIGHT)) | Q(status=Status.DEFERRED) & (
        Q(send_after__lte=now) | Q(send_after__isnull=True)
    )
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    if token:
        free |= Q(lease_token=token)
    claimed = Nudge.objects.filter(due & free, pk=nudge_id).update(
        claimed_until=now + lease(), lease_token=token, attempts=F("attempts") + 1
    )
    if not claimed:
        return None
    nudge = Nudge.objects.select_related(
        "trigger__workspace", "end_user", "enrollment__path_version__path"
    ).get(pk=nudge_id)
    if nudge.enrollment is not None:
        nudge.enrollment.end_user = nudge.end_user  # the same person: no second read
    return nudge


def process_due(*, now: datetime | None = None, limit: int = 1000) -> int:
    """Queue the nudges whose time has come: deferred ones now due, and every one whose lease
    ran out (its worker died: a queued one goes again, an in-flight one is reconciled), or that
    no job took within a lease of being queued (its job was lost)."""
    now = now or timezone.now()
    free = Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
    due = (
        Q(status=Status.DEFERRED, send_after__lte=now) & free
        | Q(status__in=CLAIMABLE, claimed_until__lt=now)
        | Q(status=Status.QUEUED, claimed_until__isnull=True, created_at__lte=now - lease())
    )
    nudge_ids = list(Nudge.objects.filter(due).order_by("pk").values_list("pk", flat=True)[:limit])
    pipeline_enqueue(nudge_ids)
    return len(nudge_ids)
