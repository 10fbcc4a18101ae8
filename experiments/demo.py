"""The demo workspace's experiment: Developer setup v1 (control) against a v2 without the
teammate invitation, running since the simulation's first day.

It is created and started before the simulated people's events are ingested, so the planner
assigns every developer and data analyst who signs up, exactly as it would for a client's users:
the demo then has assignments, two arms' funnels, results and a consistency of 1.0 to show.
"""

from datetime import datetime

from experiments import services
from experiments.models import Experiment
from paths import services as path_services
from paths.models import Path, PathVersion
from paths.steps import step_as_dict
from tenancy.models import Workspace

DEMO_EXPERIMENT_KEY = "developer-setup-short"
DEMO_PATH_KEY = "developer-setup"
DROPPED_STEP_KEY = "invite-teammate"


def demo_experiment_create(*, workspace: Workspace, started_at: datetime) -> Experiment | None:
    """Publish Developer setup v2 (v1 without the invitation step) and start v1 against v2, 50/50.
    None when the demo path is missing or the experiment exists already (idempotent)."""
    path = Path.objects.filter(workspace=workspace, key=DEMO_PATH_KEY).first()
    if path is None or Experiment.objects.filter(workspace=workspace, key=DEMO_EXPERIMENT_KEY).exists():
        return None
    control = path.versions.get(status=PathVersion.Status.PUBLISHED)
    draft = path_services.path_version_create_draft(
        source=control, changelog="Without the teammate invitation: activated at the first report."
    )
    kept = draft.steps.exclude(key=DROPPED_STEP_KEY).order_by("order", "pk")
    steps = [step_as_dict(step) for step in kept]
    path_services.path_version_replace_steps(path_version=draft, steps=steps)
    shorter = path_services.path_version_publish(path_version=draft)
    experiment = services.create_path_experiment(
        path=path,
        versions=[control, shorter],
        key=DEMO_EXPERIMENT_KEY,
        name="Developer setup without the invitation step",
        hypothesis=(
            "Asking developers to invite a teammate before they are activated loses some of them; "
            "without the step, more complete the path within the activation window."
        ),
        minimum_sample_per_arm=200,
        minimum_duration_days=14,
        maximum_duration_days=90,
    )
    return services.experiment_start(experiment=experiment, at=started_at)
