"""The feature store's periodic job (config/cron.py: daily, queue "low")."""

from django.utils import timezone
from rq import get_current_job

from ml.features import derived


def derive_features_job() -> dict[str, int]:
    """Recompute every recently active person's counters from PostgreSQL (snapshots, Redis repaired).
    Idempotent: a second run the same day rewrites the same values. Progress, in workspaces done,
    on the RQ job's meta."""
    job = get_current_job()

    def on_progress(done: int, total: int) -> None:
        if job is not None:
            job.meta["progress"] = {"done": done, "total": total}
            job.save_meta()

    done = derived.derive_all(now=timezone.now(), on_progress=on_progress)
    return {"workspaces": len(done), "people": sum(done.values())}
