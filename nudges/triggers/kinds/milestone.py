"""Milestone: a nudge when a given step is completed ({"step": "<step key>"}) or when a share of
the path is done ({"percent": 50}), once per enrollment and milestone."""

from typing import Any

from nudges.models import Nudge, Trigger
from nudges.triggers.firing import fire
from nudges.triggers.kinds.base import Progress, TriggerKind


class Milestone(TriggerKind):
    kind = Trigger.Kind.MILESTONE
    config_fields = ("step", "percent")
    fires_on_steps = True

    def config_errors(self, config: dict[str, Any]) -> dict[str, str]:
        step, percent = config.get("step"), config.get("percent")
        if bool(step) == (percent is not None):
            return {"config": "give either a step key or a percent"}
        if percent is not None and (not isinstance(percent, int) or not 1 <= percent <= 100):
            return {"percent": "a whole number from 1 to 100"}
        return {}

    def on_progress(self, trigger: Trigger, progress: Progress) -> Nudge | None:
        if trigger.config.get("step"):
            return self._on_step(trigger, progress)
        return self._on_percent(trigger, progress)

    def _on_step(self, trigger: Trigger, progress: Progress) -> Nudge | None:
        step = trigger.config["step"]
        if step not in progress.step_keys:
            return None
        return self._fire(trigger, progress, f"step:{step}", reason=f"milestone: step {step!r} completed")

    def _on_percent(self, trigger: Trigger, progress: Progress) -> Nudge | None:
        percent = int(trigger.config.get("percent", 100))
        done = progress.state["percent_complete"]
        if done < percent or not progress.step_keys:
            return None
        return self._fire(
            trigger,
            progress,
            f"percent:{percent}",
            reason=f"milestone: {done}% of the path done (trigger at {percent}%)",
        )

    @staticmethod
    def _fire(trigger: Trigger, progress: Progress, milestone: str, *, reason: str) -> Nudge | None:
        enrollment = progress.enrollment
        return fire(
            trigger,
            enrollment.end_user,
            f"enrollment:{enrollment.pk}:{milestone}",
            enrollment=enrollment,
            target_step_key=progress.state["current_step"] or "",
            reason=reason,
        )


KIND = Milestone()
