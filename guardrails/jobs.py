"""RQ entry points for guardrails: thin, idempotent, safe to run twice."""

import logging

from rq import get_current_job

from guardrails.abuse import detection as abuse
from guardrails.gdpr import erasure, vacuum
from tenancy.models import TOMBSTONE_PREFIX, EndUser

logger = logging.getLogger(__name__)


def detect_abuse_job() -> dict:
    """One abuse-detection pass over the keys active in the last minutes (the periodic run)."""
    report = abuse.abuse_detect()
    return {"api_keys": report.api_keys, "flagged": dict(report.flagged), "unavailable": report.unavailable}


def gdpr_erase_events_job(end_user_id: int) -> dict:
    """Scrub an erased profile's events in batches; the job's meta["progress"] says how far
    ({"done", "total"}), like the progress bar of `manage.py gdpr_erase`. Takes the profile's id
    only: the erased user id never goes to Redis. Then VACUUM what the erasure changed: every
    scrubbing batch has committed by then."""
    end_user = (
        EndUser.objects.filter(pk=end_user_id, external_id__startswith=TOMBSTONE_PREFIX)
        .select_related("workspace")
        .first()
    )
    if end_user is None:
        logger.info("guardrails.gdpr.erasure.job_skipped", extra={"end_user_id": end_user_id})
        return {"events": 0}
    job = get_current_job()

    def on_progress(done: int, total: int) -> None:
        if job is not None:
            job.meta["progress"] = {"done": done, "total": total}
            job.save_meta()

    events = erasure.erasure_finish(end_user=end_user, on_progress=on_progress)
    vacuum.erased_tables_vacuum()
    return {"events": events}


def gdpr_vacuum_job() -> dict:
    """VACUUM the tables erasures write to, after an erasure that finished without a job (its
    events were few and scrubbed in the request): the old row versions still hold what it erased
    (guardrails.gdpr.vacuum). Idempotent; queued after commit, as VACUUM cannot run in a transaction."""
    return {"vacuumed": vacuum.erased_tables_vacuum()}
