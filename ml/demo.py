"""The demo workspace's ML data (`make run`): simulated people with the planted effects
(ml/simulation/world.py) written over the weeks before the seeding, so the ML dashboard, the
training command and the models have something to show at once.

Written after the demo's own events and nudges (its nudge history covers every enrollment of the
workspace, and its triggers are created only where none exists): the simulation adds its path
(analyst-insights) next to the demo's two, its people ("ml-demo..." ids) and their rows. The
exploration share is higher than in production so a few thousand people give the path classifier
randomised choices to learn from. Run once: a workspace holding simulated demo people is left alone.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ml.simulation.writer import SimulationReport, simulate
from ml.training.services import MODEL_NAMES, TrainingRefused, model_train
from tenancy.models import EndUser, Workspace

logger = logging.getLogger(__name__)

DEMO_PEOPLE = 2000
DEMO_MIN_USERS = 500  # seed_demo adds the ML people only to a demo of at least this many users
DEMO_DAYS = 60
DEMO_SEED = 16
DEMO_PREFIX = "ml-demo"
DEMO_EXPLORATION_SHARE = 0.3


@dataclass
class DemoSeeded:
    simulation: SimulationReport
    trained: list[str] = field(default_factory=list)  # "name version"
    refused: list[str] = field(default_factory=list)  # why a model was not trained


def demo_seed(
    *, workspace: Workspace, people: int = DEMO_PEOPLE, now: datetime, train: bool = False
) -> DemoSeeded | None:
    """Simulate `people` over the DEMO_DAYS before `now` (None when done already); with `train`,
    train each model on them as candidates."""
    if EndUser.objects.filter(workspace=workspace, external_id__startswith=DEMO_PREFIX).exists():
        return None
    report = simulate(
        workspace=workspace,
        people=people,
        start=now - timedelta(days=DEMO_DAYS),
        days=DEMO_DAYS,
        seed=DEMO_SEED,
        exploration_share=DEMO_EXPLORATION_SHARE,
        prefix=DEMO_PREFIX,
    )
    seeded = DemoSeeded(simulation=report)
    if train:
        for name in MODEL_NAMES:
            try:
                version = model_train(workspace=workspace, name=name, now=now)
            except TrainingRefused as refused:
                seeded.refused.append(str(refused))
                continue
            seeded.trained.append(f"{version.name} {version.version}")
    logger.info(
        "ml.demo.seeded",
        extra={"workspace_id": workspace.pk, "people": report.people, "trained": len(seeded.trained)},
    )
    return seeded
