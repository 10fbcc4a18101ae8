"""RQ entry point for training: thin, over ml.training.services.model_train."""

import logging

from rq import get_current_job

from ml.training import services
from tenancy.models import Workspace

logger = logging.getLogger(__name__)


def train_models_job(workspace_id: int, names: list[str] | None = None) -> dict:
    """Train the named models (all by default) of the workspace; each one's new version or its
    refusal in the result. The job's meta["progress"] says how far: {"model", "stage", "done",
    "total", "models_done", "models_total"}. An unknown model name fails the job before any
    training."""
    names = [services.model_name_check(name) for name in (names or services.MODEL_NAMES)]
    workspace = Workspace.objects.filter(pk=workspace_id).first()
    if workspace is None:
        logger.info("ml.training.job_skipped", extra={"workspace_id": workspace_id})
        return {}
    job = get_current_job()
    results: dict[str, dict] = {}
    for index, name in enumerate(names):

        def progress(done: int, total: int, stage: str, name: str = name, index: int = index) -> None:
            if job is not None:
                job.meta["progress"] = {
                    "model": name,
                    "stage": stage,
                    "done": done,
                    "total": total,
                    "models_done": index,
                    "models_total": len(names),
                }
                job.save_meta()

        try:
            model_version = services.model_train(workspace=workspace, name=name, progress=progress)
        except services.TrainingRefused as refused:
            results[name] = {"refused": str(refused), "counts": refused.counts}
            continue
        results[name] = {
            "version": model_version.version,
            "id": model_version.pk,
            "auc": model_version.metrics.get("auc"),
        }
    return results
