"""The audit trail: one function every writer calls to record who changed what."""

from typing import Any

from django.db import models

from guardrails.models import AuditLog
from onboarding.models import Workspace


def audit_record(
    *,
    workspace: Workspace | None,
    action: str,
    actor=None,
    actor_label: str = "",
    obj: models.Model | None = None,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    request_id: str = "",
) -> AuditLog:
    """Append one audit row. `before`/`after` hold field values, never contact data or secrets."""
    changes = {}
    if before is not None:
        changes["before"] = before
    if after is not None:
        changes["after"] = after
    return AuditLog.objects.create(
        workspace=workspace,
        actor=actor if getattr(actor, "pk", None) else None,
        actor_label=actor_label or (actor.get_username() if getattr(actor, "pk", None) else "system"),
        action=action,
        object_type=obj._meta.label if obj is not None else "",
        object_id=str(obj.pk) if obj is not None and obj.pk is not None else "",
        object_repr=str(obj)[:200] if obj is not None else "",
        changes=changes,
        request_id=request_id,
    )
