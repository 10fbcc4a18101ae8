"""The stuck detector's training set: one row per spell of an enrollment on a step.

A path version's steps are walked in order: the first step becomes current at enrolment, each next
one when the one before it is completed (or at the previous step's start, if completed earlier).
A spell whose step was completed is a 0; a spell on the step the enrollment was abandoned on,
never completed, is a 1; a spell still open (the enrollment active on it) has no outcome yet and
is left out, and so are spells begun in the last ML_ACTIVATION_DAYS (their completions are known
before their abandonments, which would bias the newest rows, the validation window, towards 0).
Reverted completions count as not completed.

Features are the person's as of the step becoming current (ml/training/asof.py, the serving
code's functions) with the step, its index and hours_on_step = 0: the model scores the risk when a
person reaches a step, so stuck nudges can fire earlier for high-risk people; the time-based
detection keeps handling long spells.
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
    for enrollment_id, step_key, completed_at in rows.iterator(chunk_size=50000):
        done[enrollment_id][step_key] = completed_at
    return done


def spells(
    *,
    steps: list[tuple[str, bool]],
    enrolled_at: datetime,
    completed: dict[str, datetime],
    abandoned_on: str | None,
) -> list[tuple[int, str, datetime, int]]:
    """(step index, step key, became current at, abandoned) of one enrollment's spells with a
    known outcome. An optional step left undone is passed over; the walk stops at the first
    required one (after its row, if the enrollment was abandoned there)."""
    found = []
    start = enrolled_at
    for index, (key, optional) in enumerate(steps):
        completed_at = completed.get(key)
        if completed_at is None:
            if abandoned_on == key:
                found.append((index, key, start, 1))
                break
            if optional:
                continue
            break
        found.append((index, key, start, 0))
        start = max(start, completed_at)
    return found


def dataset(
    *, workspace_id: int, now: datetime, progress: Callable[[int, int], None] | None = None
) -> Dataset:
    horizon = now - timedelta(days=settings.ML_ACTIVATION_DAYS)
    steps = _steps(workspace_id)
    completions = _completions(workspace_id)
    enrollments = (
        Enrollment.objects.filter(workspace_id=workspace_id, enrolled_at__lte=horizon)
        .order_by()
        .values_list("pk", "end_user_id", "path_version_id", "status", "current_step_key", "enrolled_at")
    )
    found: list[tuple[int, int, str, datetime, int]] = []
    for pk, end_user_id, version_id, status, current, enrolled_at in enrollments.iterator(chunk_size=50000):
        abandoned_on = current if status == Enrollment.Status.ABANDONED else None
        for index, key, start, label in spells(
            steps=steps.get(version_id, []),
            enrolled_at=enrolled_at,
            completed=completions.get(pk, {}),
            abandoned_on=abandoned_on,
        ):
            if start <= horizon:
                found.append((end_user_id, index, key, start, label))
    found.sort(key=lambda spell: spell[3])
    history = history_load(
        workspace_id=workspace_id,
        end_user_ids={spell[0] for spell in found},
        until=found[-1][3] if found else horizon,
    )
    rows = []
    for done, (end_user_id, index, key, start, _label) in enumerate(found):
        rows.append(
            {**history.features(end_user_id, start), "step": key, "step_index": index, "hours_on_step": 0.0}
        )
        if progress is not None and done % _PROGRESS_EVERY == 0:
            progress(done, len(found))
    if progress is not None:
        progress(len(found), len(found))
    labels = np.array([spell[4] for spell in found], dtype=float)
    return Dataset(NAME, rows, labels, [spell[3] for spell in found], notes={"rows": "one per step spell"})
