"""RQ entry points for guardrails: thin, idempotent, safe to run twice."""

import logging

from rq import get_current_job

from guardrails import abuse, erasure
from onboarding.models import EndUser

logger = logging.getLogger(__name__)


def detect_abuse_job() -> dict:
    """One abuse-detection pass over the keys active in the last minutes (the periodic run)."""
    report = abuse.abuse_detect()
    return {"api_keys": report.api_keys, "flagged": dict(report.flagged), "unavailable": report.unavailable}


def gdpr_erase_events_job(end_user_id: int) -> dict:
    """Scrub an erased profile's events in batches; the job's meta["progress"] says how far
    ({"done", "total"}), like the progress bar of `manage.py gdpr_erase`. Takes the profile's id
    only: the erased user id never goes to Redis."""
    end_user = (
        EndUser.objects.filter(pk=end_user_id, external_id__startswith=erasure.TOMBSTONE_PREFIX)
        .select_related("workspace")
        .first()
    )
    if end_user is None:
        logger.info("guardrails.erasure.job_skipped", extra={"end_user_id": end_user_id})
        return {"events": 0}
    job = get_current_job()

    def on_progress(done: int, total: int) -> None:
        if job is not None:
            job.meta["progress"] = {"done": done, "total": total}
            job.save_meta()

    return {"events": erasure.erasure_finish(end_user=end_user, on_progress=on_progress)}
