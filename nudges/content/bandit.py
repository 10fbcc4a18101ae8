"""Thompson sampling over a template's active variants.

Each active version is an arm with a Beta(1 + rewards, 1 + sends - rewards) posterior on its
reward rate (a reward is a click or a conversion, counted once per nudge). Choosing samples every
arm's posterior once and takes the highest draw, so a variant is chosen with the probability
that it is the best one: new variants get explored, clear losers fade out.
"""

import random
from collections.abc import Sequence
from dataclasses import dataclass

from prometheus_client import Gauge

# The seeds' metric: each arm's share of its template's sends so far (the selection distribution).
ARM_SELECTION_RATE = Gauge(
    "bandit_arm_selection_rate",
    "Share of a template's sends that went to each variant, as of its latest Thompson choice.",
    ["template_id", "variant"],
    multiprocess_mode="mostrecent",
)


@dataclass(frozen=True)
class Arm:
    version_id: int
    variant: str
    sends: int
    rewards: int

    @property
    def alpha(self) -> int:
        return 1 + self.rewards

    @property
    def beta(self) -> int:
        return 1 + max(self.sends - self.rewards, 0)


@dataclass(frozen=True)
class Choice:
    arm: Arm
    draws: dict[str, float]  # variant -> its sampled rate, for the trace

    def explanation(self) -> str:
        shown = ", ".join(f"{variant} {draw:.3f}" for variant, draw in sorted(self.draws.items()))
        arm = self.arm
        return (
            f"variant {arm.variant} by Thompson sampling (draws: {shown}; "
            f"{arm.rewards} rewards in {arm.sends} sends)"
        )


def choose(
    arms: Sequence[Arm], *, rng: random.Random | None = None, template_id: int | None = None
) -> Choice:
    """The arm with the highest posterior draw. One arm: that one, with its draw."""
    if not arms:
        raise ValueError("no arm to choose from")
    rng = rng or random
    draws = {arm.variant: rng.betavariate(arm.alpha, arm.beta) for arm in arms}
    best = max(arms, key=lambda arm: (draws[arm.variant], -arm.version_id))
    if template_id is not None:
        total = sum(arm.sends for arm in arms) + 1  # this send included
        for arm in arms:
            sends = arm.sends + (arm is best)
            ARM_SELECTION_RATE.labels(template_id=str(template_id), variant=arm.variant).set(sends / total)
    return Choice(best, draws)
