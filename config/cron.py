"""Periodic jobs, run by RQ's cron scheduler: `python manage.py rqcron config.cron`.

Run exactly one scheduler process (it only enqueues; the `rqworker` processes run the jobs).
Each job is idempotent, so a run repeated after a restart does no harm.
"""

from rq import cron

from guardrails.jobs import detect_abuse_job
from onboarding.jobs import detect_stuck_job

STUCK_DETECTION_INTERVAL_SECONDS = 15 * 60

cron.register(detect_stuck_job, "low", interval=STUCK_DETECTION_INTERVAL_SECONDS, job_timeout=30 * 60)

# Abuse detection judges complete minutes against the hour before (guardrails/abuse.py). A pass
# takes well under a second; on "default" it does not wait behind a long stuck-detection run.
ABUSE_DETECTION_INTERVAL_SECONDS = 60

cron.register(detect_abuse_job, "default", interval=ABUSE_DETECTION_INTERVAL_SECONDS, job_timeout=5 * 60)
