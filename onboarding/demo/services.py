"""The demo workspace's onboarding data: its two published paths and its simulated people's events.

Events go through the same ingestion service as the API, in batches, so the demo data is exactly
what clients would have produced. The same seed and clock give the same calls and message ids, so
an interrupted seeding run again stores only what is missing.
"""

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.db.models import F, OuterRef, Subquery
from django.db.models.functions import Coalesce

from onboarding.demo import journeys
from onboarding.ingestion.services import events_ingest
from onboarding.models import Event
from paths.transfer import paths_import
from tenancy.models import EndUser, Workspace

DEMO_PATHS_FILE = Path(__file__).with_name("paths.json")
BATCH_SIZE = 500


class SimulatedCallRejected(Exception):
    """Ingestion refused a simulated call: the simulation and the validation disagree."""


@dataclass(frozen=True, slots=True)
class SeededEvents:
    people: int
    signed_up: int
    events: int
    stored: int


def demo_paths_import(*, workspace: Workspace) -> None:
    """Publish the demo's two paths, so the simulated sign-ups are enrolled and tracked."""
    paths_import(workspace=workspace, data=json.loads(DEMO_PATHS_FILE.read_text()))


def demo_events_seed(
    *,
    workspace: Workspace,
    people: int,
    seed: int,
    clock: datetime,
    days: int,
    on_progress: Callable[[int, int], None] | None = None,
) -> SeededEvents:
    """Simulate `people` over `days` before `clock` and ingest their calls in time order, each
    batch received a moment after its newest call; `on_progress(done, total)` after each batch."""
    timed_calls = journeys.calls_in_time_order(people=people, seed=seed, now=clock, days=days)
    stored = 0
    for start in range(0, len(timed_calls), BATCH_SIZE):
        batch = timed_calls[start : start + BATCH_SIZE]
        # Received a moment after the newest call of the batch, as a client's flush would be.
        received_at = min(batch[-1][0] + timedelta(seconds=2), clock)
        result = events_ingest(
            workspace=workspace, raw_events=[call for _, call in batch], received_at=received_at
        )
        if result.rejected:
            raise SimulatedCallRejected(f"A simulated call was rejected: {result.rejected[0].as_dict()}")
        stored += result.stored
        if on_progress is not None:
            on_progress(start + len(batch), len(timed_calls))
    _end_users_dated_by_first_event(workspace=workspace)
    signed_up = sum(1 for _, call in timed_calls if call["type"] == "identify")
    return SeededEvents(people=people, signed_up=signed_up, events=len(timed_calls), stored=stored)


def _end_users_dated_by_first_event(*, workspace: Workspace) -> None:
    """Date each simulated person's EndUser.created_at at their first call rather than at the
    seeding run, so signup-week cohorts spread over the simulated weeks as real data would."""
    first_event = (
        Event.objects.filter(workspace=workspace, end_user=OuterRef("pk"))
        .order_by("timestamp")
        .values("timestamp")[:1]
    )
    EndUser.objects.filter(workspace=workspace).update(
        created_at=Coalesce(Subquery(first_event), F("created_at"))
    )
