"""Periodic jobs, run by RQ's cron scheduler: `python manage.py rqcron config.cron`.

Run exactly one scheduler process (it only enqueues; the `rqworker` processes run the jobs).
Each job is idempotent, so a run repeated after a restart does no harm.
"""

from rq import cron

from guardrails.jobs import detect_abuse_job
from nudges.jobs import nudges_due_job, triggers_scan_job
from onboarding.jobs import detect_stuck_job

STUCK_DETECTION_INTERVAL_SECONDS = 15 * 60

cron.register(detect_stuck_job, "low", interval=STUCK_DETECTION_INTERVAL_SECONDS, job_timeout=30 * 60)

# Abuse detection judges complete minutes against the hour before (guardrails/abuse.py). A pass
# takes well under a second; on "default" it does not wait behind a long stuck-detection run.
ABUSE_DETECTION_INTERVAL_SECONDS = 60

cron.register(detect_abuse_job, "default", interval=ABUSE_DETECTION_INTERVAL_SECONDS, job_timeout=5 * 60)

# Time-based nudge triggers (stuck signals, inactivity, re-engagement, custom windows), and the
# deferred nudges whose time has come (quiet hours over, provider back, retry backoff elapsed).
TRIGGER_SCAN_INTERVAL_SECONDS = 5 * 60
NUDGES_DUE_INTERVAL_SECONDS = 60

cron.register(triggers_scan_job, "low", interval=TRIGGER_SCAN_INTERVAL_SECONDS, job_timeout=30 * 60)
cron.register(nudges_due_job, "default", interval=NUDGES_DUE_INTERVAL_SECONDS, job_timeout=5 * 60)
