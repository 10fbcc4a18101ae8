"""What onboarding tells the apps above it (nudges, guardrails) has happened, as Django signals.

onboarding may not import the apps built on it, so it announces and they listen: each receiver
is connected in its app's `AppConfig.ready()`. Every signal is sent with `sender` the module that
sends it and keyword arguments only.

Receivers run synchronously, inside the writer's transaction, and an exception they raise reaches
the writer. A receiver that needs the committed rows (to enqueue a job that reads them) defers its
work with `transaction.on_commit` / `core.on_commit.on_commit_batched`, as nudges' receivers do, so
nothing is sent for a transaction that rolls back.
"""

from django.dispatch import Signal

enrollment_started = Signal()
"""An end user was enrolled on a path. Arguments: `workspace_id`, `enrollment_id`."""

steps_completed = Signal()
"""Steps became complete in this write (not the ones completed before). Arguments:
`workspace_id`, `enrollment_id`, `step_keys` (non-empty list), `at` (the latest completion time)."""

events_stored = Signal()
"""Events were stored for the first time (duplicates are not sent again). Arguments:
`workspace_id`, `events` (the normalised event dicts of onboarding.ingestion.pipeline, each with
its `end_user_id`, `name`, `message_id` and `timestamp`; possibly empty)."""

ingestion_rejected = Signal()
"""An ingestion request (/v1/track, /v1/batch...) is answered 400 or 413: some or all of its events
were rejected. Arguments: `request` (its `auth` the ApiKey) and `response` (its body lists the
first rejections and counts them all in `rejected_count`, or rejects the request whole)."""
