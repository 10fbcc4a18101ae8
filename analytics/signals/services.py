"""Writes of survey signals: one validated payload to one object, and the merged reports.

A signal is refused whole when any field carries PII (guardrails' detector): nothing is stored,
and the caller is told which field. Objects are laid out by stage, day and survey stage:

    <env>/signals/<workspace id>/<yyyy>/<mm>/<dd>/<pre|post>/<correlation key>-<uuid>.json
    <env>/reports/<workspace id>/<yyyy-mm-dd | all>/summary.json and report.html

The day is the server's UTC receipt day (a client's clock can be wrong); the correlation key is
`<user id>-<session id>`, percent-encoded in the object name, with a `-` inside the user id
written %2D so that the first `-` ends the user id (names written before did not encode it:
see selectors.signals_of_user, which the GDPR erasure uses).
"""

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import orjson
from django.utils import timezone

from analytics.signals import merge, report, selectors
from analytics.signals.storage import EnvironmentStorage
from guardrails.pii import detector

logger = logging.getLogger(__name__)

FREE_TEXT_FIELDS = ("intent", "goal", "text")
IDENTIFIER_FIELDS = ("user_id", "session_id")
# Ids are random by design: the detector's "long mixed-case token" finding is expected there. An
# e-mail address or a phone number as an id is still refused.
_EXPECTED_IN_IDENTIFIERS = {"SECRET"}
PII_DETECTION_BUDGET_SECONDS = 0.2


class SignalRefused(Exception):
    def __init__(self, field: str, reason: str) -> None:
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


@dataclass(frozen=True)
class StoredSignal:
    key: str
    signal_id: str
    correlation_key: str


def correlation_key(*, user_id: str, session_id: str) -> str:
    return f"{user_id}-{session_id}"


def _pii_refusal(payload: dict) -> SignalRefused | None:
    scanned = {name: payload[name] for name in (*IDENTIFIER_FIELDS, *FREE_TEXT_FIELDS) if payload.get(name)}
    result = detector.redact_for_llm(scanned, budget_seconds=PII_DETECTION_BUDGET_SECONDS)
    if result.blocked:
        # Fail safe: a payload the detector could not clear is not stored.
        return SignalRefused("(request)", "could not be checked for personal data; not stored")
    for finding in result.findings:
        field = finding.path.removeprefix("$.").split("[")[0].split(".")[0]
        if field in IDENTIFIER_FIELDS and finding.type in _EXPECTED_IN_IDENTIFIERS:
            continue
        return SignalRefused(field, f"contains personal data ({finding.type}); signals must not carry PII")
    return None


def signal_record(
    *, storage: EnvironmentStorage, workspace_id: int, payload: dict, received_at: datetime
) -> StoredSignal:
    """Store one validated signal as its own object; raise SignalRefused (nothing stored) on PII."""
    refusal = _pii_refusal(payload)
    if refusal is not None:
        logger.info("signals.refused", extra={"field": refusal.field, "workspace_id": workspace_id})
        raise refusal
    signal_id = uuid.uuid4().hex
    key_of_session = correlation_key(user_id=payload["user_id"], session_id=payload["session_id"])
    document = {
        **payload,
        "timestamp": (payload.get("timestamp") or received_at).isoformat(),
        "signal_id": signal_id,
        "workspace_id": workspace_id,
        "correlation_key": key_of_session,
        "received_at": received_at.isoformat(),
        "environment": storage.environment,
    }
    day = received_at.date()
    name = selectors.signal_object_name(
        user_id=payload["user_id"], session_id=payload["session_id"], signal_id=signal_id
    )
    key = f"{selectors.signals_day_prefix(workspace_id=workspace_id, day=day)}{payload['stage']}/{name}"
    full_key = storage.put(key, orjson.dumps(document), content_type="application/json")
    logger.info("signals.stored", extra={"stage": payload["stage"], "workspace_id": workspace_id})
    return StoredSignal(key=full_key, signal_id=signal_id, correlation_key=key_of_session)


@dataclass(frozen=True)
class WrittenReport:
    workspace_id: int
    label: str
    summary_key: str
    report_key: str
    summary: dict


def signals_report_write(
    *,
    storage: EnvironmentStorage,
    workspace_id: int,
    day: date | None,
    on_progress: Callable[[int, int], None] | None = None,
) -> WrittenReport:
    """Merge a workspace's signals of `day` (or all of them) and write summary.json and report.html.

    Idempotent: a rerun reads the same objects and overwrites the same two report objects."""
    records = selectors.signals_for_report(
        storage=storage, workspace_id=workspace_id, day=day, on_progress=on_progress
    )
    summary = merge.summarize(
        pre=records.pre,
        post=records.post,
        late_post=records.late_post,
        earlier_pre_keys=records.earlier_pre_keys,
    )
    label = day.isoformat() if day else "all"
    summary = {
        "workspace_id": workspace_id,
        "period": label,
        "environment": storage.environment,
        "generated_at": timezone.now().isoformat(timespec="seconds"),
        **summary,
    }
    prefix = selectors.report_prefix(workspace_id=workspace_id, label=label)
    summary_key = storage.put(
        f"{prefix}summary.json",
        orjson.dumps(summary, option=orjson.OPT_INDENT_2),
        content_type="application/json",
    )
    report_key = storage.put(
        f"{prefix}report.html", report.render(summary).encode(), content_type="text/html; charset=utf-8"
    )
    logger.info("signals.report.written", extra={"workspace_id": workspace_id, "period": label})
    return WrittenReport(workspace_id, label, summary_key, report_key, summary)


def signals_reports_write(
    *, storage: EnvironmentStorage, day: date | None, on_progress: Callable[[int, int], None] | None = None
) -> list[WrittenReport]:
    """One report per workspace that has signals in this stage's store."""
    return [
        signals_report_write(storage=storage, workspace_id=workspace_id, day=day, on_progress=on_progress)
        for workspace_id in selectors.signal_workspace_ids(storage=storage)
    ]


def signals_of_user_erase(*, storage: EnvironmentStorage, workspace_id: int, user_id: str) -> int:
    """Delete one person's signal objects (GDPR erasure) and rewrite the reports that merged them,
    since a report's feedback quotes their free text. Returns how many objects were deleted."""
    found = selectors.signals_of_user(storage=storage, workspace_id=workspace_id, user_id=user_id)
    days: set[date] = set()
    for key, _document in found:
        storage.delete(key)
        year, month, day = key.split("/")[2:5]
        days.add(date(int(year), int(month), int(day)))
    # A day's report also reads the next day's posts and the previous day's pre keys.
    touched = {day + timedelta(days=shift) for day in days for shift in (-1, 0, 1)}
    for label in selectors.report_labels(storage=storage, workspace_id=workspace_id) if found else []:
        if label == "all" or date.fromisoformat(label) in touched:
            signals_report_write(
                storage=storage,
                workspace_id=workspace_id,
                day=None if label == "all" else date.fromisoformat(label),
            )
    logger.info("signals.erased", extra={"workspace_id": workspace_id, "objects": len(found)})
    return len(found)
