"""The nudge response predictor in use: the send-time provider of nudges/delivery/sendtime.py,
registered from ml/apps.py.

With an active nudge_response_predictor, the person's features now are scored for every remaining
hour of today in their time zone (the current one included: "now") and every channel the model
knows; the nudge is held until the best hour of its channel, or sent now when now is that hour
(ties go to the earliest). The pipeline does not let the send time change the channel (it tries
the trigger's channels in order), so the best channel is reported in the reason only, when it is
not the one being tried. Without a model, the provider answers None and the most-active-hour
heuristic stands; an error propagates to the registry, which keeps the heuristic.
"""

from datetime import datetime
from zoneinfo import ZoneInfo

from guardrails.models import Channel
from ml.features import store
from ml.serving import loaded
from tenancy.models import EndUser

NAME = "nudge_response_predictor"


def _grid(serving: loaded.Loaded, features: dict, channels: list[str], local_now: datetime) -> dict:
    """{(channel, local hour): probability of conversion} for the hours left today."""
    keys = [(channel, hour) for channel in channels for hour in range(local_now.hour, 24)]
    context = {"weekday": local_now.weekday()}
    rows = [{**features, **context, "channel": channel, "local_hour": hour} for channel, hour in keys]
    probabilities = serving.predictor.predict(serving.predictor.matrix(rows))
    return {key: float(probability) for key, probability in zip(keys, probabilities, strict=True)}


def _best(grid: dict, channel: str) -> tuple[int, float]:
    """(hour, probability) of the channel's best remaining hour, the earliest on a tie."""
    hour = min((key[1] for key in grid if key[0] == channel), key=lambda each: (-grid[(channel, each)], each))
    return hour, grid[(channel, hour)]


def best_send_time(
    *, end_user: EndUser, zone: ZoneInfo, now: datetime, channel: str = ""
) -> tuple[datetime | None, str] | None:
    """(when, why) from the active response predictor, when None meaning now; None without one."""
    serving = loaded.active(end_user.workspace_id, NAME)
    if serving is None:
        return None
    known = serving.predictor.vocabulary.get("channel") or Channel.values
    channels = sorted(set(known) | ({channel} - {""}))
    local_now = now.astimezone(zone)
    read = store.features_for(workspace_id=end_user.workspace_id, end_users=[end_user], now=now)
    grid = _grid(serving, read.rows.get(end_user.pk, {}), channels, local_now)
    best = {each: _best(grid, each) for each in channels}
    top = max(channels, key=lambda each: best[each][1])  # the first of equals: sorted order
    used = channel or top
    hour, probability = best[used]
    current = grid[(used, local_now.hour)]
    label = f"response predictor {serving.model_version.version}"
    on = f" on {used}"
    if best[top][1] > probability:
        on += f" (best channel today: {top}, {best[top][1]:.0%} at {best[top][0]:02d}:00)"
    if hour == local_now.hour:
        return None, f"send time: now, {label}: {current:.0%} now{on}, today's best"
    why = f"{label}: {probability:.0%} at {hour:02d}:00 vs {current:.0%} now{on}"
    return local_now.replace(
        hour=hour, minute=0, second=0, microsecond=0
    ), f"send time: {hour:02d}:00 {zone.key}, {why}"
