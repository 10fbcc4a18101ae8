"""GDPR / CCPA export: everything held on one person, as one JSON bundle.

Each kind of data has one small exporter, registered in order with `@exporter("name")`; the bundle
lists the sections it holds in `sections`, in that order. An app added later (nudges, experiments)
registers its own exporter from its AppConfig.ready, and its section appears in every bundle from
then on: the registry lists only what exists, never an empty placeholder.

An exporter returns a JSON-ready value, or an iterator of rows for a section too large to hold in
memory (events): `bundle_write` streams those row by row, so a long history costs one chunk of
rows at a time.
"""

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import IO, Any

import orjson
from django.db.models import Case, DateTimeField, F, Q, Value, When
from django.utils import timezone

from guardrails.models import ConsentRecord, LLMCall, PolicyDecision, Preference
from onboarding.ingestion import event_store, event_times
from onboarding.models import AnonymousIdentity, Contact, Enrollment, Event
from tenancy.audit import audit_record
from tenancy.models import AuditLog, EndUser, Workspace

logger = logging.getLogger(__name__)

FORMAT = "onboarding-platform.gdpr-export"
FORMAT_VERSION = 1
"""Bump it when a section changes shape; readers check it before reading the sections."""

EVENT_CHUNK_SIZE = 2000


@dataclass(frozen=True)
class Subject:
    """The person an export is about, resolved within one workspace."""

    workspace: Workspace
    end_user: EndUser

    @property
    def user_id(self) -> str:
        return self.end_user.external_id or ""


Exporter = Callable[[Subject], Any]
EXPORTERS: dict[str, Exporter] = {}


def exporter(name: str) -> Callable[[Exporter], Exporter]:
    """Register a section's exporter; sections appear in the bundle in registration order."""

    def register(function: Exporter) -> Exporter:
        if name in EXPORTERS and EXPORTERS[name] is not function:
            raise ValueError(f"an exporter for the section {name!r} is registered already")
        EXPORTERS[name] = function
        return function

    return register


# --- Exporters ------------------------------------------------------------------------------------


@exporter("profile")
def _profile(subject: Subject) -> dict:
    end_user = subject.end_user
    return {
        "user_id": end_user.external_id,
        "traits": end_user.traits,
        "persona": end_user.persona,
        "signup_source": end_user.signup_source,
        "company_size": end_user.company_size,
        "use_case": end_user.use_case,
        "locale": end_user.locale,
        "timezone": end_user.timezone,
        "group_id": end_user.group_id,
        "created_at": end_user.created_at,
        "updated_at": end_user.updated_at,
    }


@exporter("contact")
def _contact(subject: Subject) -> dict | None:
    return (
        Contact.objects.filter(end_user=subject.end_user)
        .values("email", "phone", "first_name", "last_name", "name", "address", "updated_at")
        .first()
    )


@exporter("anonymous_identities")
def _anonymous_identities(subject: Subject) -> list[dict]:
    return list(
        AnonymousIdentity.objects.filter(workspace=subject.workspace, end_user=subject.end_user)
        .order_by("created_at", "pk")
        .values("anonymous_id", "created_at")
    )


# Every column of an event but the two keys the bundle already names.
EVENT_FIELDS = ("id", *(name for name in event_store.FIELDS if name not in ("workspace", "end_user")))


EVENT_TIMES = ("timestamp", "original_timestamp", "sent_at", "received_at")


def _readable_time(name: str) -> Case:
    """The column, or null where it lies outside onboarding.ingestion.event_times' window: a row stored
    before ingestion bounded times (year 10000) cannot be read by Python, and must not stop the
    person's export. The migration and `repair_event_times` rewrite such rows."""
    in_window = {f"{name}__gte": event_times.EARLIEST, f"{name}__lt": event_times.LATEST}
    return Case(When(**in_window, then=F(name)), default=Value(None), output_field=DateTimeField())


@exporter("events")
def _events(subject: Subject) -> Iterator[dict]:
    rows = (
        Event.objects.filter(workspace=subject.workspace, end_user=subject.end_user)
        .order_by("timestamp", "pk")
        .values(
            *(name for name in EVENT_FIELDS if name not in EVENT_TIMES),
            **{f"readable_{name}": _readable_time(name) for name in EVENT_TIMES},
        )
        .iterator(chunk_size=EVENT_CHUNK_SIZE)
    )
    return (
        {name: row[f"readable_{name}" if name in EVENT_TIMES else name] for name in EVENT_FIELDS}
        for row in rows
    )


@exporter("enrollments")
def _enrollments(subject: Subject) -> list[dict]:
    enrollments = (
        Enrollment.objects.filter(workspace=subject.workspace, end_user=subject.end_user)
        .select_related("path_version__path", "answer_snapshot")
        .prefetch_related("completions", "signals")
        .order_by("enrolled_at", "pk")
    )
    rows = []
    for enrollment in enrollments:
        snapshot = getattr(enrollment, "answer_snapshot", None)
        rows.append(
            {
                "id": enrollment.pk,
                "path": enrollment.path_version.path.key,
                "path_name": enrollment.path_version.path.name,
                "path_version": enrollment.path_version.number,
                "status": enrollment.status,
                "current_step": enrollment.current_step_key,
                "answers": enrollment.answers,
                "revision": enrollment.revision,
                "decision_reason": enrollment.decision_reason,
                "enrolled_at": enrollment.enrolled_at,
                "step_entered_at": enrollment.step_entered_at,
                "completed_at": enrollment.completed_at,
                "stuck_at": enrollment.stuck_at,
                "step_completions": [
                    {
                        "step": completion.step_key,
                        "method": completion.method,
                        "event_id": completion.event_id,
                        "completed_at": completion.completed_at,
                        "recorded_at": completion.recorded_at,
                        "reverted_at": completion.reverted_at,
                    }
                    for completion in sorted(enrollment.completions.all(), key=lambda row: row.pk)
                ],
                "signals": [
                    {
                        "kind": signal.kind,
                        "step": signal.step_key,
                        "reason": signal.reason,
                        "created_at": signal.created_at,
                        "resolved_at": signal.resolved_at,
                    }
                    for signal in sorted(enrollment.signals.all(), key=lambda row: row.pk)
                ],
                "answers_at_completion": (
                    {"answers": snapshot.answers, "completed_at": snapshot.completed_at}
                    if snapshot is not None
                    else None
                ),
            }
        )
    return rows


@exporter("consent_history")
def _consent_history(subject: Subject) -> list[dict]:
    return list(
        ConsentRecord.objects.filter(workspace=subject.workspace, end_user=subject.end_user)
        .order_by("recorded_at", "pk")
        .values("channel", "purpose", "granted", "source", "recorded_at")
    )


@exporter("preferences")
def _preferences(subject: Subject) -> dict | None:
    return (
        Preference.objects.filter(workspace=subject.workspace, end_user=subject.end_user)
        .values("quiet_hours_start", "quiet_hours_end", "snooze_until", "do_not_disturb", "updated_at")
        .first()
    )


@exporter("policy_decisions")
def _policy_decisions(subject: Subject) -> list[dict]:
    return list(
        PolicyDecision.objects.filter(workspace=subject.workspace, end_user=subject.end_user)
        .order_by("decided_at", "pk")
        .values("action", "channel", "allowed", "reasons", "decided_at")
    )


@exporter("llm_calls")
def _llm_calls(subject: Subject) -> list[dict]:
    return list(
        LLMCall.objects.filter(workspace=subject.workspace, end_user=subject.end_user)
        .order_by("created_at", "pk")
        .values(
            "purpose",
            "model",
            "redacted_input",
            "output",
            "outcome",
            "fallback_reason",
            "prompt_tokens",
            "completion_tokens",
            "cost_usd",
            "latency_ms",
            "created_at",
        )
    )


def audit_rows_about(*, workspace: Workspace, end_user: EndUser) -> Q:
    """Audit rows whose object is the person or one of their own rows (contact, enrollments,
    consent, preferences). Rows that only mention them in passing are found by the erasure's
    text search, which must also catch those."""
    objects = Q(object_type=EndUser._meta.label, object_id=str(end_user.pk))
    related = (
        (Contact, Contact.objects.filter(end_user=end_user)),
        (Enrollment, Enrollment.objects.filter(workspace=workspace, end_user=end_user)),
        (ConsentRecord, ConsentRecord.objects.filter(workspace=workspace, end_user=end_user)),
        (Preference, Preference.objects.filter(workspace=workspace, end_user=end_user)),
    )
    for model, queryset in related:
        ids = [str(pk) for pk in queryset.values_list("pk", flat=True)]
        if ids:
            objects |= Q(object_type=model._meta.label, object_id__in=ids)
    return objects


@exporter("audit_log")
def _audit_log(subject: Subject) -> list[dict]:
    # The acting staff member is left out: their name is their personal data, not the subject's.
    return list(
        AuditLog.objects.filter(workspace=subject.workspace)
        .filter(audit_rows_about(workspace=subject.workspace, end_user=subject.end_user))
        .order_by("created_at", "pk")
        .values("action", "object_type", "object_repr", "changes", "created_at")
    )


# --- The bundle -----------------------------------------------------------------------------------


def _default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"cannot export a {type(value).__name__}")


def _dumps(value: Any) -> bytes:
    return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS)


def metadata(subject: Subject, *, generated_at=None) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "workspace": {"id": subject.workspace.pk, "slug": subject.workspace.slug},
        "user_id": subject.user_id,
        "generated_at": generated_at or timezone.now(),
        "sections": list(EXPORTERS),
    }


@dataclass
class ExportReport:
    sections: list[str]
    events: int = 0
    bytes_written: int = 0


def bundle_write(
    subject: Subject,
    stream: IO[bytes],
    *,
    on_event: Callable[[int], None] | None = None,
) -> ExportReport:
    """Write the bundle as one JSON object: metadata, then one key per section, in order.

    Sections that are iterators are written as arrays one row at a time; `on_event(count)` is
    called after each chunk of events, for a progress display."""
    report = ExportReport(sections=list(EXPORTERS))
    head = _dumps(metadata(subject))
    written = stream.write(head[:-1])  # the object stays open for the sections
    for name, function in EXPORTERS.items():
        written += stream.write(b"," + _dumps(name) + b":")
        value = function(subject)
        if isinstance(value, Iterator):
            written += stream.write(b"[")
            for count, row in enumerate(value, start=1):
                written += stream.write((b"," if count > 1 else b"") + _dumps(row))
                if name == "events":
                    report.events = count
                    if on_event is not None and count % EVENT_CHUNK_SIZE == 0:
                        on_event(count)
            written += stream.write(b"]")
        else:
            written += stream.write(_dumps(value))
    written += stream.write(b"}")
    report.bytes_written = written
    if on_event is not None:
        on_event(report.events)
    return report


def events_count(subject: Subject) -> int:
    return Event.objects.filter(workspace=subject.workspace, end_user=subject.end_user).count()


# --- The service ----------------------------------------------------------------------------------


def gdpr_export(
    *,
    workspace: Workspace,
    end_user: EndUser,
    stream: IO[bytes],
    actor=None,
    actor_label: str = "",
    request_id: str = "",
    on_event: Callable[[int], None] | None = None,
) -> ExportReport:
    """Write one person's bundle to `stream` and record the export in the audit log.

    The audit row names the profile by its id and counts what was exported; never the person's
    identifiers, so the audit log is not itself a copy of their data."""
    if end_user.workspace_id != workspace.pk:
        raise ValueError("the end user belongs to another workspace")
    subject = Subject(workspace=workspace, end_user=end_user)
    report = bundle_write(subject, stream, on_event=on_event)
    audit_record(
        workspace=workspace,
        action="data.export",
        actor=actor,
        actor_label=actor_label,
        after={
            "end_user_id": end_user.pk,
            "sections": report.sections,
            "events": report.events,
            "bytes": report.bytes_written,
        },
        request_id=request_id,
    )
    logger.info(
        "guardrails.gdpr.export.exported",
        extra={"workspace_id": workspace.pk, "end_user_id": end_user.pk, "events": report.events},
    )
    return report
