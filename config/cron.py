"""Periodic jobs, one schedule for every way the project runs.

Production: RQ's cron scheduler, `python manage.py rqcron config.cron`. Run exactly one scheduler
process (it only enqueues; the `rqworker` processes run the jobs). The embedded default (`make
run`: no Redis, JOBS_RUN_INLINE) runs the same SCHEDULE in the server's own process instead
(config.periodic, started by the ASGI lifespan). Each job is idempotent, so a run repeated after a
restart does no harm.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rq import cron

from analytics.alerts.jobs import detect_anomalies_job
from analytics.jobs import refresh_rollups_job
from analytics.signals.jobs import merge_signals_job
from experiments.jobs import evaluate_experiments_job
from guardrails.jobs import detect_abuse_job
from ml.drift.jobs import check_drift_job
from ml.features.jobs import derive_features_job
from nudges.jobs import nudges_due_job, triggers_scan_job
from onboarding.jobs import detect_stuck_job


@dataclass(frozen=True)
class Periodic:
    func: Callable[[], Any]
    queue: str
    interval_seconds: int
    job_timeout_seconds: int

    @property
    def name(self) -> str:
        return f"{self.func.__module__}.{self.func.__qualname__}"


STUCK_DETECTION_INTERVAL_SECONDS = 15 * 60
# Abuse detection judges complete minutes against the hour before (guardrails/abuse/detection.py). A pass
# takes well under a second; on "default" it does not wait behind a long stuck-detection run.
ABUSE_DETECTION_INTERVAL_SECONDS = 60
# Time-based nudge triggers (stuck signals, inactivity, re-engagement, custom windows), and the
# deferred nudges whose time has come (quiet hours over, provider back, retry backoff elapsed).
TRIGGER_SCAN_INTERVAL_SECONDS = 5 * 60
NUDGES_DUE_INTERVAL_SECONDS = 60
# The nightly merge of survey signals (analytics/signals): yesterday's pre and post, once a day.
SIGNALS_MERGE_INTERVAL_SECONDS = 24 * 60 * 60
# The analytics rollups (analytics/rollups/services.py): only the slices changed since the last pass.
ROLLUP_REFRESH_INTERVAL_SECONDS = 5 * 60
# Anomaly alerts (analytics/alerts) judge whole past days from the rollups: hourly is plenty.
ANOMALY_DETECTION_INTERVAL_SECONDS = 60 * 60
# The experiment decisions (experiments/decisions.py): winner, extend, stop or defer, hourly.
EXPERIMENT_DECISIONS_INTERVAL_SECONDS = 60 * 60
# The ML layer (docs/ml.md): the feature store's daily derivation from PostgreSQL (it also repairs the
# real-time Redis counters), and the weekly drift and accuracy check that may start a retraining.
FEATURE_DERIVATION_INTERVAL_SECONDS = 24 * 60 * 60
DRIFT_CHECK_INTERVAL_SECONDS = 7 * 24 * 60 * 60

SCHEDULE = (
    Periodic(detect_stuck_job, "low", STUCK_DETECTION_INTERVAL_SECONDS, 30 * 60),
    Periodic(detect_abuse_job, "default", ABUSE_DETECTION_INTERVAL_SECONDS, 5 * 60),
    Periodic(triggers_scan_job, "low", TRIGGER_SCAN_INTERVAL_SECONDS, 30 * 60),
    Periodic(nudges_due_job, "default", NUDGES_DUE_INTERVAL_SECONDS, 5 * 60),
    Periodic(merge_signals_job, "low", SIGNALS_MERGE_INTERVAL_SECONDS, 60 * 60),
    Periodic(refresh_rollups_job, "low", ROLLUP_REFRESH_INTERVAL_SECONDS, 30 * 60),
    Periodic(detect_anomalies_job, "low", ANOMALY_DETECTION_INTERVAL_SECONDS, 30 * 60),
    Periodic(evaluate_experiments_job, "low", EXPERIMENT_DECISIONS_INTERVAL_SECONDS, 30 * 60),
    Periodic(derive_features_job, "low", FEATURE_DERIVATION_INTERVAL_SECONDS, 60 * 60),
    Periodic(check_drift_job, "low", DRIFT_CHECK_INTERVAL_SECONDS, 60 * 60),
)

for periodic in SCHEDULE:
    cron.register(
        periodic.func,
        periodic.queue,
        interval=periodic.interval_seconds,
        job_timeout=periodic.job_timeout_seconds,
    )
