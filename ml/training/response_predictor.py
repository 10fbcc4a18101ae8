"""The nudge response predictor's training set: one row per sent nudge whose conversion window
(the workspace's NudgeSettings.conversion_window_hours, 48 by default) has passed; nudges sent
since are left out, converted or not, so the newest rows are not filled with early conversions.

Features are the person's as of the send (ml/training/asof.py, the serving code's functions) with
the channel and the send's local hour and weekday in the person's time zone (UTC when they have
none or an unknown one, as the nudge policy reads it); the label is the nudge converting.
"""

from collections.abc import Callable
from datetime import datetime, timedelta

import numpy as np

from guardrails.policy.localtime import zone_named
from ml.training.asof import history_load
from ml.training.datasets import Dataset
from nudges.models import Nudge, NudgeSettings
from tenancy.models import EndUser

NAME = "nudge_response_predictor"
DEFAULT_CONVERSION_WINDOW_HOURS = 48
_PROGRESS_EVERY = 5000


def _window_hours(workspace_id: int) -> int:
    hours = (
        NudgeSettings.objects.filter(workspace_id=workspace_id)
        .values_list("conversion_window_hours", flat=True)
        .first()
    )
    return hours or DEFAULT_CONVERSION_WINDOW_HOURS


def local_context(channel: str, sent_at: datetime, zone_name: str) -> dict:
    """The send's own columns: channel, local hour and weekday (0 = Monday)."""
    local = sent_at.astimezone(zone_named(zone_name))
    return {"channel": channel, "local_hour": local.hour, "weekday": local.weekday()}


def dataset(
    *, workspace_id: int, now: datetime, progress: Callable[[int, int], None] | None = None
) -> Dataset:
    horizon = now - timedelta(hours=_window_hours(workspace_id))
    sent = list(
        Nudge.objects.filter(workspace_id=workspace_id, sent_at__isnull=False, sent_at__lte=horizon)
        .order_by("sent_at", "pk")
        .values_list("end_user_id", "channel", "sent_at", "converted_at")
    )
    people = {end_user_id for end_user_id, *_ in sent}
    zones = {
        pk: zone
        for pk, zone in EndUser.objects.filter(workspace_id=workspace_id)
        .order_by()
        .values_list("pk", "timezone")
        .iterator(chunk_size=50000)
        if pk in people
    }
    history = history_load(
        workspace_id=workspace_id, end_user_ids=people, until=sent[-1][2] if sent else horizon
    )
    rows, labels = [], []
    for done, (end_user_id, channel, sent_at, converted_at) in enumerate(sent):
        rows.append(
            {
                **history.features(end_user_id, sent_at),
                **local_context(channel, sent_at, zones.get(end_user_id, "")),
            }
        )
        labels.append(int(converted_at is not None))
        if progress is not None and done % _PROGRESS_EVERY == 0:
            progress(done, len(sent))
    if progress is not None:
        progress(len(sent), len(sent))
    return Dataset(
        NAME,
        rows,
        np.asarray(labels, dtype=float),
        [each[2] for each in sent],
        notes={"rows": "one per sent nudge", "conversion_window_hours": _window_hours(workspace_id)},
    )
