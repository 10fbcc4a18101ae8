"""Ingestion's guard against re-creating an erased person (onboarding.ingestion.pipeline.store_batch).

An erased person's user id and anonymous ids are kept only as digests in Suppression rows
(reason "erased"). Events carrying an erased userId, or an alias from an erased id, are accepted
(the SDK must not retry them) but not stored; an erased anonymousId is stored blank when the event
names a userId that was not erased, and dropped with its event when it is the event's only identity.

Free for workspaces without erasures: each process remembers for MEMO_SECONDS whether a workspace
has any (one indexed EXISTS per workspace per second, no Redis round trip per batch, nothing to
fail when Redis is down). Another process may so hold a stale "none" for up to MEMO_SECONDS: the
erasure commits the suppression first, waits that long (`wait_for_every_process`), and only then
frees the user id, so no process can re-create the person with it.
"""

import logging
import time

from guardrails.gdpr import selectors

logger = logging.getLogger(__name__)

MEMO_SECONDS = 1.0

_memo: dict[int, tuple[bool, float]] = {}  # workspace id -> (has erasures, valid until)


def _has_erasures(workspace_id: int) -> bool:
    now = time.monotonic()
    known = _memo.get(workspace_id)
    if known is not None and known[1] > now:
        return known[0]
    found = selectors.workspace_has_erasures(workspace_id=workspace_id)
    if MEMO_SECONDS > 0:
        # Valid from before the query: a query that raced a new suppression expires in time.
        _memo[workspace_id] = (found, now + MEMO_SECONDS)
    return found


def forget(*, workspace_id: int) -> None:
    """This process asks the database again at its next batch (the erasing process, at once)."""
    _memo.pop(workspace_id, None)


def wait_for_every_process() -> None:
    """Until every process's memory of "no erasures" has expired (see the module's docstring)."""
    if MEMO_SECONDS > 0:
        time.sleep(MEMO_SECONDS)


def without_erased(*, workspace_id: int, events: list[dict]) -> list[dict]:
    """The normalised events (onboarding.ingestion.pipeline) that may be stored; the same list when none is
    about an erased person."""
    if not events or not _has_erasures(workspace_id):
        return events
    previous_ids = {event["previous_id"] for event in events if event["previous_id"]}
    erased_users, erased_devices = selectors.erased_identifiers(
        workspace=workspace_id,
        user_ids={event["user_id"] for event in events if event["user_id"]} | previous_ids,
        anonymous_ids={event["anonymous_id"] for event in events if event["anonymous_id"]} | previous_ids,
    )
    if not erased_users and not erased_devices:
        return events
    kept = []
    for event in events:
        if event["user_id"] in erased_users:
            continue
        if event["previous_id"] and event["previous_id"] in erased_users | erased_devices:
            continue  # an alias would link the erased id to someone again
        if event["anonymous_id"] in erased_devices:
            if not event["user_id"]:
                continue
            event["anonymous_id"] = ""
        kept.append(event)
    logger.info(
        "guardrails.gdpr.erasure.events_dropped",
        extra={"workspace_id": workspace_id, "dropped": len(events) - len(kept)},
    )
    return kept
