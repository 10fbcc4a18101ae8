"""The audit trail: one function every writer calls to record who changed what.

`audit_snapshot` and `audit_changes` turn a model instance into the before/after field values an
audit row keeps. Contact data and secrets never go in: a changed password, key digest, secret or
contact value shows as "[redacted]" on both sides, which says that it changed and nothing else.
"""

import datetime
import hashlib
import json
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from core.request_id import current_request_id
from tenancy.models import CONTACT_TRAITS, AuditLog, Workspace

REDACTED = "[redacted]"

# Secrets and contact data, by field name on any model ...
_REDACTED_FIELD_NAMES = frozenset(
    {
        "password",
        "key_digest",
        "ciphertext",
        "token",
        "secret",
        "email",
        "phone",
        "first_name",
        "last_name",
        "address",
        "ip_address",
        "user_agent",
        "get_data",
        "post_data",
        "session_key",
        "session_data",
    }
)
# ... and by model where the name alone is ambiguous ("key" is a path's slug but a device's seed).
_REDACTED_MODEL_FIELDS = {
    "otp_totp.TOTPDevice": {"key"},
    "otp_static.StaticToken": {"token"},
    "axes.AccessAttempt": {"username"},
    "axes.AccessFailureLog": {"username"},
    "axes.AccessLog": {"username"},
}
# Every value of these models is contact data.
_CONTACT_MODELS = {"onboarding.Contact"}
_KEPT_ON_CONTACT_MODELS = {"id", "end_user", "updated_at"}


class _Encoder(DjangoJSONEncoder):
    """Times to the microsecond (Django's encoder rounds to milliseconds); anything else as text."""

    def default(self, value):
        if isinstance(value, datetime.datetime | datetime.time):
            return value.isoformat()
        try:
            return super().default(value)
        except TypeError:
            return str(value)


def _json_safe(value: Any) -> Any:
    return json.loads(json.dumps(value, cls=_Encoder))


def _without_contact_traits(value: Any) -> Any:
    """JSON values (traits, properties) keep their shape; contact trait values are replaced."""
    if isinstance(value, dict):
        return {
            key: REDACTED if key in CONTACT_TRAITS else _without_contact_traits(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [_without_contact_traits(item) for item in value]
    return value


def _is_redacted(label: str, name: str) -> bool:
    if label in _CONTACT_MODELS:
        return name not in _KEPT_ON_CONTACT_MODELS
    return name in _REDACTED_FIELD_NAMES or name in _REDACTED_MODEL_FIELDS.get(label, ())


class _Redacted:
    """A value compared by digest, kept in memory only, shown as "[redacted]"."""

    __slots__ = ("digest",)

    def __init__(self, value: Any):
        self.digest = hashlib.sha256(repr(value).encode()).digest()

    def __eq__(self, other) -> bool:
        return isinstance(other, _Redacted) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)


def _shown(value: Any) -> Any:
    return REDACTED if isinstance(value, _Redacted) else value


def audit_snapshot(obj: models.Model, *, many_to_many: bool = True) -> dict[str, Any]:
    """The instance's field values as an audit row may show them (m2m fields as sorted ids)."""
    label = obj._meta.label
    snapshot: dict[str, Any] = {}
    for field in obj._meta.concrete_fields:
        value = field.value_from_object(obj)
        if _is_redacted(label, field.name):
            snapshot[field.name] = _Redacted(value) if value not in (None, "", {}, []) else None
        elif isinstance(field, models.JSONField):
            snapshot[field.name] = _json_safe(_without_contact_traits(value))
        else:
            snapshot[field.name] = _json_safe(value)
    if many_to_many and obj.pk is not None:
        for field in obj._meta.many_to_many:
            snapshot[field.name] = sorted(getattr(obj, field.name).values_list("pk", flat=True))
    return snapshot


def audit_changes(
    before: dict[str, Any] | None, after: dict[str, Any] | None
) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Before/after as stored: for a change, only the fields that differ."""
    if before is None or after is None:
        return (
            {name: _shown(value) for name, value in before.items()} if before is not None else None,
            {name: _shown(value) for name, value in after.items()} if after is not None else None,
        )
    changed = [name for name in after if before.get(name) != after[name]]
    return (
        {name: _shown(before.get(name)) for name in changed},
        {name: _shown(after[name]) for name in changed},
    )


def audit_record(
    *,
    workspace: Workspace | None,
    action: str,
    actor=None,
    actor_label: str = "",
    obj: models.Model | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
    request_id: str = "",
) -> AuditLog:
    """Append one audit row. `before`/`after` hold field values, never contact data or secrets;
    `reason` says why something asked for was refused.

    Inside a request the row carries the request's id (core/request_id.py) unless given one.
    """
    changes = {}
    if before is not None:
        changes["before"] = before
    if after is not None:
        changes["after"] = after
    if reason:
        changes["reason"] = reason
    return AuditLog.objects.create(
        workspace=workspace,
        actor=actor if getattr(actor, "pk", None) else None,
        actor_label=actor_label or (actor.get_username() if getattr(actor, "pk", None) else "system"),
        action=action,
        object_type=obj._meta.label if obj is not None else "",
        object_id=str(obj.pk) if obj is not None and obj.pk is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        changes=changes,
        request_id=request_id or current_request_id(),
    )


def refusal_note(request, obj: models.Model, reason: str) -> None:
    """An admin view or action refused what was asked of `obj`: the admin's audit
    (tenancy/admin_changes.py) records "<action>_refused" with the reason, not the action."""
    if not hasattr(request, "audit_refusals"):
        request.audit_refusals = {}
    request.audit_refusals[(obj._meta.label, str(obj.pk))] = reason


def refusal_of(request, obj: models.Model) -> str | None:
    """Why an admin view or action refused `obj` during this request, if it did."""
    return getattr(request, "audit_refusals", {}).get((obj._meta.label, str(obj.pk)))
