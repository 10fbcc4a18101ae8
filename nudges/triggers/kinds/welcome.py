"""Welcome: a nudge when a user is enrolled on a path, once per enrollment."""

from nudges.models import Nudge, Trigger
from nudges.triggers.firing import fire
from nudges.triggers.kinds.base import Progress, TriggerKind


class Welcome(TriggerKind):
    kind = Trigger.Kind.WELCOME
    fires_on_enrollment = True

    def on_progress(self, trigger: Trigger, progress: Progress) -> Nudge | None:
        enrollment, state = progress.enrollment, progress.state
        chosen_by = enrollment.decision_reason or "planner"
        return fire(
            trigger,
            enrollment.end_user,
            f"enrollment:{enrollment.pk}",
            enrollment=enrollment,
            target_step_key=state["current_step"] or "",
            reason=f"welcome: enrolled on {state['path']['name']} ({chosen_by})",
        )


KIND = Welcome()
