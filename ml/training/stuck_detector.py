"""The stuck detector's training set: rows per spell of an enrollment on a step, one at each of
CHECKPOINT_HOURS on the step while the step is still not completed.

A path version's steps are walked in order: the first step becomes current at enrolment, each next
one when the one before it is completed (or at the previous step's start, if completed earlier).
A spell whose step was completed is a 0; a spell on the step the enrollment was abandoned on,
never completed, is a 1; a spell still open (the enrollment active on it) has no outcome yet and
is left out, and so are spells begun in the last ML_ACTIVATION_DAYS (their completions are known
before their abandonments, which would bias the newest rows, the validation window, towards 0).
Reverted completions count as not completed.

Features are the person's as of each checkpoint (ml/training/asof.py, the serving code's
functions) with the step, its index and hours_on_step = the checkpoint: the first row is the
person as the step became current (the risk when they reach it), the later ones what serving asks
about someone still on the step after so many hours (silence since then is a strong sign). A spell
with a checkpoint row in training has all of them there: the split orders rows by the spell's
start, so no spell's outcome is seen on both sides.
"""

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np
from django.conf import settings

from ml.training.asof import history_load
from ml.training.datasets import Dataset
from onboarding.models import Enrollment, StepCompletion
from paths.models import Step

NAME = "stuck_detector"
CHECKPOINT_HOURS = (0.0, 12.0, 48.0)
_PROGRESS_EVERY = 5000


def _steps(workspace_id: int) -> dict[int, list[tuple[str, bool]]]:
    ordered: dict[int, list[tuple[str, bool]]] = defaultdict(list)
    rows = (
        Step.objects.filter(path_version__path__workspace_id=workspace_id)
        .order_by("path_version_id", "order", "pk")
        .values_list("path_version_id", "key", "optional")
    )
    for path_version_id, key, optional in rows:
        ordered[path_version_id].append((key, optional))
    return ordered


def _completions(workspace_id: int) -> dict[int, dict[str, datetime]]:
    done: dict[int, dict[str, datetime]] = defaultdict(dict)
    rows = (
        StepCompletion.objects.filter(enrollment__workspace_id=workspace_id, reverted_at__isnull=True)
        .order_by()
        .values_list("enrollment_id", "step_key", "completed_at")
    )
    # Fetched whole, not through a server-side cursor: a cursor is planned for its first rows,
    # and this join then picked a nested loop on tables whose statistics lag a bulk load.
    for enrollment_id, step_key, completed_at in rows:
        done[enrollment_id][step_key] = completed_at
    return done


def spells(
    *,
    steps: list[tuple[str, bool]],
    enrolled_at: datetime,
    completed: dict[str, datetime],
    abandoned_on: str | None,
) -> list[tuple[int, str, datetime, datetime | None, int]]:
    """(step index, step key, became current at, completed at, abandoned) of one enrollment's
    spells with a known outcome. An optional step left undone is passed over; the walk stops at the first
    required one (after its row, if the enrollment was abandoned there)."""
    found = []
    start = enrolled_at
    for index, (key, optional) in enumerate(steps):
        completed_at = completed.get(key)
        if completed_at is None:
            if abandoned_on == key:
                found.append((index, key, start, None, 1))
                break
            if optional:
                continue
            break
        found.append((index, key, start, completed_at, 0))
        start = max(start, completed_at)
    return found


def _observations(workspace_id: int, horizon: datetime) -> list[tuple]:
    """(person, step index, step key, spell start, observed at, checkpoint hours, label) of every
    spell's checkpoints, by spell start."""
    steps = _steps(workspace_id)
    completions = _completions(workspace_id)
    enrollments = (
        Enrollment.objects.filter(workspace_id=workspace_id, enrolled_at__lte=horizon)
        .order_by()
        .values_list("pk", "end_user_id", "path_version_id", "status", "current_step_key", "enrolled_at")
    )
    found = []
    for pk, end_user_id, version_id, status, current, enrolled_at in enrollments.iterator(chunk_size=50000):
        for index, key, start, completed_at, label in spells(
            steps=steps.get(version_id, []),
            enrolled_at=enrolled_at,
            completed=completions.get(pk, {}),
            abandoned_on=current if status == Enrollment.Status.ABANDONED else None,
        ):
            for hours in CHECKPOINT_HOURS:
                observed = start + timedelta(hours=hours)
                if observed > horizon or (completed_at is not None and completed_at <= observed):
                    break
                found.append((end_user_id, index, key, start, observed, hours, label))
    found.sort(key=lambda row: row[3])
    return found


def dataset(
    *, workspace_id: int, now: datetime, progress: Callable[[int, int], None] | None = None
) -> Dataset:
    horizon = now - timedelta(days=settings.ML_ACTIVATION_DAYS)
    found = _observations(workspace_id, horizon)
    history = history_load(
        workspace_id=workspace_id,
        end_user_ids={row[0] for row in found},
        until=max((row[4] for row in found), default=horizon),
    )
    rows = []
    for done, (end_user_id, index, key, _start, observed, hours, _label) in enumerate(found):
        features = history.features(end_user_id, observed)
        rows.append({**features, "step": key, "step_index": index, "hours_on_step": hours})
        if progress is not None and done % _PROGRESS_EVERY == 0:
            progress(done, len(found))
    if progress is not None:
        progress(len(found), len(found))
    return Dataset(
        NAME,
        rows,
        np.array([row[6] for row in found], dtype=float),
        [row[3] for row in found],
        notes={"rows": "step spells at their checkpoints", "checkpoint_hours": list(CHECKPOINT_HOURS)},
    )
