"""Handing nudges to the pipeline: in jobs of PIPELINE_BATCH, each job leasing its batch.

A scan that fires for thousands of users queues a few hundred jobs, not thousands (RQ's own work
per job is about a third of a nudge's); each nudge of a job is processed on its own, so one
failing does not stop the others. The job is enqueued by its dotted name: nudges.jobs sits above
the pipeline and imports it, and nothing below it imports nudges.jobs.
"""

from core.jobs import enqueue

PIPELINE_BATCH = 20  # nudges per job
PROCESS_JOB = "nudges.jobs.nudges_process_job"
JOB_OPTIONS = {"result_ttl": 0}  # the outcome is on the nudge; nothing reads the job's result


def pipeline_enqueue(nudge_ids: list[int]) -> None:
    """Send these nudges through the pipeline after the current transaction commits."""
    for start in range(0, len(nudge_ids), PIPELINE_BATCH):
        enqueue(PROCESS_JOB, nudge_ids[start : start + PIPELINE_BATCH], job_options=JOB_OPTIONS)
