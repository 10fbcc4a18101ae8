"""The ingestion pipeline: validate a batch, resolve identities, store it, update profiles.

One transaction per batch, a handful of statements whatever its size. Invalid events are
reported by index and never block the valid ones.
"""

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import orjson
from django.conf import settings
from django.db import transaction

from core.db import retry
from onboarding import signals
from onboarding.identity import profiles
from onboarding.identity.resolution import resolve_end_users
from onboarding.ingestion import debugger as live
from onboarding.ingestion import event_store, guards
from onboarding.ingestion.segment import (
    Call,
    FieldError,
    InvalidCall,
    event_time,
    message_id,
    nesting_errors,
    validate_call,
)
from onboarding.progress import engine as progress
from tenancy.models import CONTACT_TRAITS, Workspace


@dataclass(frozen=True, slots=True)
class Rejection:
    index: int
    errors: list[FieldError]
    too_large: bool = False

    def as_dict(self) -> dict[str, Any]:
        first = self.errors[0]
        return {
            "index": self.index,
            "field": first.field,
            "reason": first.reason,
            "errors": [error.as_dict() for error in self.errors],
        }


@dataclass(slots=True)
class IngestResult:
    accepted: int = 0
    stored: int = 0
    rejected: list[Rejection] = field(default_factory=list)

    @property
    def duplicates(self) -> int:
        return self.accepted - self.stored


def _strip_context(context: dict[str, Any]) -> dict[str, Any]:
    """Events keep no contact data: context.traits loses it, context.ip is dropped."""
    cleaned = {key: value for key, value in context.items() if key != "ip"}
    traits = cleaned.get("traits")
    if isinstance(traits, dict) and CONTACT_TRAITS.intersection(traits):
        cleaned["traits"] = {key: value for key, value in traits.items() if key not in CONTACT_TRAITS}
    return cleaned


def _normalise(
    call: Call, raw: dict, *, received_at: datetime, batch_context: dict, batch_sent_at: datetime | None
) -> dict[str, Any]:
    timestamp, original_timestamp, sent_at = event_time(
        call, received_at=received_at, batch_sent_at=batch_sent_at
    )
    context = _strip_context({**batch_context, **call.context} if batch_context else call.context)
    event = {
        "type": call.type,
        "name": "",
        "message_id": message_id(call, raw),
        "user_id": call.userId or "",
        "anonymous_id": call.anonymousId or "",
        "group_id": "",
        "previous_id": "",
        "properties": {},
        "context": context,
        "timestamp": timestamp,
        "original_timestamp": original_timestamp,
        "sent_at": sent_at,
        "traits": {},
        "contact": {},
    }
    match call.type:
        case "track":
            event["name"] = call.event
            event["properties"] = call.properties
        case "page" | "screen":
            event["name"] = call.name or ""
            event["properties"] = (
                {"category": call.category, **call.properties} if call.category else call.properties
            )
        case "identify":
            event["traits"], event["contact"] = profiles.split_contact_traits(call.traits)
            event["properties"] = event["traits"]
        case "group":
            event["group_id"] = call.groupId
            event["traits"] = event["properties"] = call.traits
        case "alias":
            event["previous_id"] = call.previousId
    return event


def validate_batch(
    raw_events: list[Any],
    *,
    received_at: datetime,
    call_type: str | None = None,
    batch_context: dict | None = None,
    batch_sent_at: datetime | None = None,
) -> tuple[list[dict], list[Rejection]]:
    """Validate and normalise every event; returns (valid events, rejections by index)."""
    valid, rejected = [], []
    for index, raw in enumerate(raw_events):
        try:
            encoded = orjson.dumps(raw)
        except orjson.JSONEncodeError:
            encoded = None  # nested past orjson's limit (254 levels)
        too_deep = nesting_errors(raw, encoded)
        if too_deep or encoded is None:
            reason = "cannot be encoded as JSON"
            rejected.append(Rejection(index, too_deep or [FieldError("(event)", reason)]))
            continue
        if len(encoded) > settings.INGEST_MAX_EVENT_BYTES:
            reason = (
                f"event is {len(encoded)} bytes; the limit is {settings.INGEST_MAX_EVENT_BYTES} bytes (32 KB)"
            )
            rejected.append(Rejection(index, [FieldError("(event)", reason)], too_large=True))
            continue
        if b"\\u0000" in encoded:
            reason = "contains a NUL character (\\u0000), which cannot be stored"
            rejected.append(Rejection(index, [FieldError("(event)", reason)]))
            continue
        try:
            call = validate_call(raw, call_type=call_type)
            valid.append(
                _normalise(
                    call,
                    raw,
                    received_at=received_at,
                    batch_context=batch_context or {},
                    batch_sent_at=batch_sent_at,
                )
            )
        except InvalidCall as invalid:
            rejected.append(Rejection(index, invalid.errors))
    return valid, rejected


def store_batch(*, workspace: Workspace, events: list[dict], received_at: datetime) -> set[str]:
    """Store valid events in one transaction; return the message ids stored for the first time.

    Concurrent batches about the same people can deadlock in PostgreSQL (merging profiles,
    claiming an anonymous one); the loser's transaction is rolled back whole and run again, up to
    retry.WRITE_ATTEMPTS times with exponential backoff, so the client gets its 200 and nothing is lost
    or stored twice. Inside an outer transaction (a caller's atomic block) it runs once.
    """
    # The registered filters: events of people erased under GDPR are accepted but not stored
    # (guardrails.gdpr.erased_guard).
    events = guards.events_to_store(workspace_id=workspace.pk, events=events)
    if not events:
        return set()
    if transaction.get_connection().in_atomic_block:
        return _store_once(workspace=workspace, events=events, received_at=received_at)
    for attempt in retry.retrying(retry_on=retry.is_conflict):
        with attempt:
            return _store_once(workspace=workspace, events=events, received_at=received_at)
    raise AssertionError("unreachable: tenacity reraises the last error")


def _store_once(*, workspace: Workspace, events: list[dict], received_at: datetime) -> set[str]:
    # The same messageId twice in one request: the first one counts.
    unique_events = list({event["message_id"]: event for event in reversed(events)}.values())[::-1]
    with transaction.atomic():
        end_user_ids, merges = resolve_end_users(
            workspace=workspace,
            pairs=((event["user_id"] or None, event["anonymous_id"] or None) for event in unique_events),
        )
        rows = []
        for event in unique_events:
            event["end_user_id"] = end_user_ids[(event["user_id"] or None, event["anonymous_id"] or None)]
            rows.append(
                (
                    workspace.pk,
                    event["end_user_id"],
                    event["type"],
                    event["name"],
                    event["message_id"],
                    event["user_id"],
                    event["anonymous_id"],
                    event["group_id"],
                    event["previous_id"],
                    event["properties"],
                    event["context"],
                    event["timestamp"],
                    event["original_timestamp"],
                    event["sent_at"],
                    received_at,
                )
            )
        new_ids = event_store.insert_events(rows)
        new_events = [event for event in unique_events if event["message_id"] in new_ids]
        identifies = [event for event in new_events if event["type"] == "identify"]
        if identifies:
            profiles.apply_identifies(identifies)
        groups = [event for event in new_events if event["type"] == "group"]
        if groups:
            profiles.apply_groups(groups)
        if merges:
            profiles.apply_merges(workspace, merges)
        aliases = [event for event in new_events if event["type"] == "alias"]
        if aliases:
            profiles.apply_aliases(workspace, aliases)
        # Step completions and enrolment on identify; in a retried savepoint that, should it
        # still fail, is logged and rolled back alone: the events commit whatever happens.
        progress.progress_on_events(workspace=workspace, events=new_events)
        signals.events_stored.send(sender=__name__, workspace_id=workspace.pk, events=new_events)
        transaction.on_commit(lambda: live.publish_events(workspace_id=workspace.pk, events=new_events))
    return new_ids
