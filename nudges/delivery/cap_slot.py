"""The daily-cap slot of one channel's try, held by a context manager so that no way out of the
try can leak it.

An allowed nudge.send check reserves a slot of the user's daily cap (guardrails.policy.engine).
The pipeline holds it while it composes and sends on that channel; once the provider has the
nudge (or may have it: in doubt) the slot is kept for good, and on every other way out (no
template, deferred, refused, an error) it is given back, in one place.
"""

from collections.abc import Iterator
from contextlib import contextmanager

from guardrails.policy import engine as policy


class CapSlot:
    """The daily-cap slot an allowed nudge.send check reserved, until the nudge keeps it."""

    def __init__(self, decision: policy.Decision):
        self.decision = decision
        self.kept = False

    def keep(self) -> None:
        """The provider has the nudge (or may have it): the slot is its delivery's, for good."""
        self.kept = True


@contextmanager
def cap_slot(decision: policy.Decision) -> Iterator[CapSlot]:
    """Hold the slot for one channel's try; give it back on the way out unless it was kept,
    whichever way the try ends (no template, deferred, refused, an error)."""
    slot = CapSlot(decision)
    try:
        yield slot
    finally:
        if not slot.kept:
            policy.release(decision)
