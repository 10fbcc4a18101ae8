"""What a GDPR / CCPA erasure does to each kind of data: the erasers, one per kind, in a registry.

The erasure itself (order, locking, the events' job) is guardrails.gdpr.erasure; the events are
scrubbed by guardrails.gdpr.erasure_events.

What happens to each kind of data (docs/nudges-and-guardrails.md, "GDPR export and erasure"):

- the profile keeps its row (events, enrollments and completions still point at it, so counts and
  funnels do not move) but its user id becomes a tombstone, `erased:<random hex>`, unrelated to
  the person, and its traits and feature columns are emptied;
- the Contact row, the anonymous identities and the preferences (quiet hours, snooze) are deleted;
- events keep type, name and times; properties and context are emptied and userId, anonymousId
  and previousId become the tombstone, in batches (a long history runs as an RQ job);
- enrollments keep status, steps and completions; answers keep only what the answer totals count
  (choices, numbers, booleans: values from the path's own lists), so the totals are unchanged,
  and lose free text and anything else; the planner's reason (it names traits) is erased;
- consent records are kept, pointing at the tombstoned profile: proof that consent was given or
  withdrawn, which the GDPR allows keeping, with nothing left that names the person;
- LLM calls keep model, tokens and cost (the budget) and lose their input and output;
- audit rows about the person keep who did what and when, with their values erased;
- a Suppression (reason "erased") keeps a digest of the user id and of each anonymous id, so a
  re-import does not resurrect them (guardrails.gdpr.erased_guard), and the erasure is audited with
  counts only.

Erasers are registered in order with `@eraser("name")`; an app added later (nudges, experiments)
registers its own.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib.admin.models import LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db.models import Q, TextField
from django.db.models.functions import Cast

from guardrails.gdpr.export import audit_rows_about
from guardrails.models import LLMCall, Preference, Suppression
from guardrails.policy import subjects
from onboarding.models import AnonymousIdentity, Contact, Enrollment, EnrollmentSignal
from onboarding.progress import answers as answer_aggregation
from tenancy.models import FEATURE_TRAITS, AuditLog, EndUser, Workspace

ERASED = "[erased]"
MIN_SEARCHED_LENGTH = 4
"""Identifiers shorter than this are matched whole, never inside longer text (a user id "42")."""


@dataclass(frozen=True)
class Identifiers:
    """What identifies the person, read before anything is erased; held in memory only."""

    user_id: str
    anonymous_ids: tuple[str, ...]
    contact_values: tuple[str, ...]

    @property
    def all(self) -> tuple[str, ...]:
        return tuple(value for value in (self.user_id, *self.anonymous_ids, *self.contact_values) if value)


@dataclass(frozen=True)
class ErasureScope:
    workspace: Workspace
    end_user: EndUser
    tombstone: str
    identifiers: Identifiers


def identifiers_read(end_user: EndUser) -> Identifiers:
    """What identifies the person now: their user id, anonymous ids and contact details."""
    contact = Contact.objects.filter(end_user=end_user).first()
    contact_values: list[str] = []
    if contact is not None:
        contact_values = [
            value
            for value in (contact.email, contact.phone, contact.first_name, contact.last_name, contact.name)
            if value
        ]
    anonymous_ids = AnonymousIdentity.objects.filter(workspace_id=end_user.workspace_id, end_user=end_user)
    return Identifiers(
        user_id=end_user.external_id or "",
        anonymous_ids=tuple(anonymous_ids.order_by("pk").values_list("anonymous_id", flat=True)),
        contact_values=tuple(contact_values),
    )


Eraser = Callable[[ErasureScope], int]
ERASERS: dict[str, Eraser] = {}


def eraser(name: str) -> Callable[[Eraser], Eraser]:
    """Register an eraser: it erases one kind of data and returns how many rows it changed."""

    def register(function: Eraser) -> Eraser:
        if name in ERASERS and ERASERS[name] is not function:
            raise ValueError(f"an eraser named {name!r} is registered already")
        ERASERS[name] = function
        return function

    return register


# --- Erasers --------------------------------------------------------------------------------------


def _scrub(value: Any, *, everything: bool, needles: tuple[str, ...]) -> Any:
    """Replace strings: all of them (`everything`), or those holding one of the needles."""
    if isinstance(value, dict):
        return {key: _scrub(item, everything=everything, needles=needles) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrub(item, everything=everything, needles=needles) for item in value]
    if isinstance(value, str) and (everything or _mentions(value, needles)):
        return ERASED
    return value


def _mentions(text: str, needles: tuple[str, ...]) -> bool:
    return any(
        text == needle or (len(needle) >= MIN_SEARCHED_LENGTH and needle in text) for needle in needles
    )


# Audit rows first: they are found through the person's rows, some of which are deleted next.
@eraser("audit_log")
def _audit_log(scope: ErasureScope) -> int:
    """Rows about the person lose every value (who did what, when stays); other rows that name one
    of their identifiers lose those values. Append-only rows: updated through the base manager,
    as LLM calls are (see `_llm_calls`)."""
    needles = scope.identifiers.all
    about = audit_rows_about(workspace=scope.workspace, end_user=scope.end_user)
    mentioned = Q()
    for needle in needles:
        if len(needle) >= MIN_SEARCHED_LENGTH:
            mentioned |= Q(object_repr__contains=needle) | Q(changes_text__contains=needle)
        else:
            mentioned |= Q(object_repr=needle)
    rows = (
        AuditLog.objects.filter(workspace=scope.workspace)
        .annotate(changes_text=Cast("changes", TextField()))
        .filter(about | mentioned)
        .values_list("pk", "object_repr", "changes")
    )
    about_ids = set(
        AuditLog.objects.filter(workspace=scope.workspace).filter(about).values_list("pk", flat=True)
    )
    changed = 0
    for pk, object_repr, changes in rows:
        everything = pk in about_ids
        new_repr = ERASED if everything or _mentions(object_repr, needles) else object_repr
        new_changes = _scrub(changes, everything=everything, needles=needles)
        if new_repr != object_repr or new_changes != changes:
            AuditLog._base_manager.filter(pk=pk).update(object_repr=new_repr, changes=new_changes)
            changed += 1
    return changed


@eraser("admin_log")
def _admin_log(scope: ErasureScope) -> int:
    """Django's admin history names the objects it changed (an EndUser by its user id)."""
    objects = Q()
    for model, ids in (
        (EndUser, [scope.end_user.pk]),
        (Enrollment, Enrollment.objects.filter(end_user=scope.end_user).values_list("pk", flat=True)),
    ):
        content_type = ContentType.objects.get_for_model(model)
        objects |= Q(content_type=content_type, object_id__in=[str(pk) for pk in ids])
    return LogEntry.objects.filter(objects).exclude(object_repr=ERASED).update(object_repr=ERASED)


@eraser("suppression")
def _suppress(scope: ErasureScope) -> int:
    rows = [
        Suppression(
            workspace=scope.workspace,
            channel="",
            subject_digest=subjects.subject_digest(scope.workspace, kind, value),
            reason=Suppression.Reason.ERASED,
        )
        for kind, values in (
            (subjects.USER_ID, [scope.identifiers.user_id]),
            (subjects.ANONYMOUS_ID, scope.identifiers.anonymous_ids),
        )
        for value in values
        if value.strip()
    ]
    Suppression.objects.bulk_create(rows, ignore_conflicts=True)
    return len(rows)


@eraser("contact")
def _contact(scope: ErasureScope) -> int:
    return Contact.objects.filter(end_user=scope.end_user).delete()[0]


@eraser("anonymous_identities")
def _anonymous_identities(scope: ErasureScope) -> int:
    return AnonymousIdentity.objects.filter(workspace=scope.workspace, end_user=scope.end_user).delete()[0]


@eraser("profile")
def _profile(scope: ErasureScope) -> int:
    # group_id stays: it names the customer's account (a company), which account-level counts use.
    return EndUser.objects.filter(pk=scope.end_user.pk).update(
        external_id=scope.tombstone, traits={}, **dict.fromkeys(FEATURE_TRAITS, "")
    )


def counted_answers(answers: dict, question_types: answer_aggregation.QuestionTypes) -> dict:
    """The answers the totals count (onboarding.progress.answers.contribution reads exactly these)."""
    kept: dict[str, dict[str, Any]] = {}
    for step_key, questions in question_types.items():
        given = answers.get(step_key)
        if not isinstance(given, dict):
            continue
        for question_key, question_type in questions.items():
            if question_type not in answer_aggregation.UNCOUNTED_TYPES and question_key in given:
                kept.setdefault(step_key, {})[question_key] = given[question_key]
    return kept


@eraser("enrollments")
def _enrollments(scope: ErasureScope) -> int:
    changed = 0
    types_by_version: dict[int, answer_aggregation.QuestionTypes] = {}
    enrollments = Enrollment.objects.filter(workspace=scope.workspace, end_user=scope.end_user).order_by("pk")
    for enrollment in enrollments:
        if enrollment.path_version_id not in types_by_version:
            types_by_version[enrollment.path_version_id] = answer_aggregation.question_types(
                path_version_id=enrollment.path_version_id
            )
        enrollment.answers = counted_answers(
            enrollment.answers or {}, types_by_version[enrollment.path_version_id]
        )
        enrollment.decision_reason = ERASED if enrollment.decision_reason else ""
        Enrollment.objects.filter(pk=enrollment.pk).update(
            answers=enrollment.answers, decision_reason=enrollment.decision_reason
        )
        if enrollment.status == Enrollment.Status.COMPLETED:
            # Same counted answers, so the snapshot's contribution and the totals stay as they were.
            answer_aggregation.answers_snapshot_record(enrollment=enrollment)
        changed += 1
    # Needs-review reasons quote event property values; stuck reasons only name steps and times.
    EnrollmentSignal.objects.filter(
        enrollment__workspace=scope.workspace,
        enrollment__end_user=scope.end_user,
        kind=EnrollmentSignal.Kind.NEEDS_REVIEW,
    ).update(reason=ERASED)
    return changed


@eraser("preferences")
def _preferences(scope: ErasureScope) -> int:
    return Preference.objects.filter(workspace=scope.workspace, end_user=scope.end_user).delete()[0]


@eraser("llm_calls")
def _llm_calls(scope: ErasureScope) -> int:
    # LLMCall and AuditLog are append-only: save(), delete() and their managers' bulk updates are
    # refused. The erasure is the one writer allowed past that, through the plain base manager.
    return LLMCall._base_manager.filter(workspace=scope.workspace, end_user=scope.end_user).update(
        redacted_input={}, output={}
    )
