"""RQ entry points for experiments: thin, idempotent, each experiment on its own."""

import logging
import time

from experiments import decisions, services
from experiments.models import Experiment

logger = logging.getLogger(__name__)


def evaluate_experiments_job() -> dict[str, int]:
    """Evaluate every running experiment and act on the decision (services.experiment_decide).
    One experiment failing is logged and the others are still evaluated; a second run in the
    same hour finds the same data and changes nothing more (a stopped experiment is no longer
    running, an extended one has its planned end moved)."""
    experiment_ids = decisions.experiments_to_evaluate()
    totals = {"experiments": len(experiment_ids), "failed": 0, **dict.fromkeys(decisions.ACTIONS, 0)}
    started = time.monotonic()
    for done, experiment_id in enumerate(experiment_ids, start=1):
        experiment = Experiment.objects.select_related("workspace").filter(pk=experiment_id).first()
        if experiment is None:
            continue
        try:
            decision = services.experiment_decide(experiment=experiment)
        except Exception:
            logger.exception("experiments.decision.failed", extra={"experiment_id": experiment_id})
            totals["failed"] += 1
            continue
        totals[decision.action] += 1
        logger.info(
            "experiments.decision.progress",
            extra={
                "experiment_id": experiment_id,
                "action": decision.action,
                "done": done,
                "total": len(experiment_ids),
                "elapsed_ms": round(1000 * (time.monotonic() - started)),
            },
        )
    logger.info("experiments.decision.done", extra=totals)
    return totals
