"""What a trigger kind may do. A kind overrides only what applies to it; the defaults do nothing,
so the engine can ask every registered kind the same questions."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from nudges.models import Nudge, Trigger
from nudges.triggers.firing import ScanReport
from onboarding.models import Enrollment


@dataclass(frozen=True)
class Progress:
    """A progress change, as the kinds that react to it see it."""

    enrollment: Enrollment
    state: dict[str, Any]  # onboarding's enrollment state (path, current step, percent complete)
    step_keys: list[str]  # steps completed by this change (empty for a new enrollment)


class TriggerKind:
    kind: str = ""
    config_fields: tuple[str, ...] = ()  # the Trigger.config keys its admin form fields hold
    fires_on_enrollment = False  # reacts to a new enrollment
    fires_on_steps = False  # reacts to completed steps
    fires_on_events = False  # reacts to stored events (`watched_events`, `on_events`)
    scans = False  # has a periodic scan

    def config_errors(self, config: dict[str, Any]) -> dict[str, str]:
        """Field -> what is wrong with this kind's configuration (empty when valid)."""
        return {}

    def on_progress(self, trigger: Trigger, progress: Progress) -> Nudge | None:
        """The nudge this progress change fires, if any."""
        return None

    def watched_events(self, trigger: Trigger) -> set[str]:
        """Names of the stored events this trigger reacts to."""
        return set()

    def on_events(self, trigger: Trigger, events: Iterable[dict[str, Any]]) -> int:
        """React to stored events (rows of Event values); returns the waits started."""
        return 0

    def scan(self, triggers: list[Trigger], now: datetime, report: ScanReport) -> None:
        """One periodic pass of this kind's active triggers of one workspace."""
