"""Writes of workspace secrets: set one (audited, never its value), rotate them all."""

import logging

from django.db import transaction

from guardrails.models import WorkspaceSecret
from guardrails.secrets.encryption import current_fernet, secret_encrypt
from tenancy.audit import REDACTED, audit_record
from tenancy.models import Workspace

logger = logging.getLogger(__name__)


@transaction.atomic
def workspace_secret_set(*, workspace: Workspace, name: str, value: str, actor=None) -> WorkspaceSecret:
    """Store or replace one credential; the audit row says it was set, never its value."""
    name = name.strip()
    if not name or not value:
        raise ValueError("a secret needs a name and a value")
    secret, created = WorkspaceSecret.objects.update_or_create(
        workspace=workspace, name=name, defaults={"ciphertext": secret_encrypt(value)}
    )
    audit_record(
        workspace=workspace,
        action="secret.created" if created else "secret.replaced",
        actor=actor,
        actor_label="" if getattr(actor, "pk", None) else "cli",
        obj=secret,
        before=None if created else {"value": REDACTED},
        after={"name": name, "value": REDACTED},
    )
    logger.info(
        "guardrails.secret.set",
        extra={"workspace_id": workspace.pk, "secret_id": secret.pk, "new": created},
    )
    return secret


def workspace_secrets_rotate() -> int:
    """Re-encrypt every secret with the first key; returns how many rows were rewritten."""
    fernet = current_fernet()
    rotated = 0
    for secret_id in WorkspaceSecret.objects.values_list("pk", flat=True).iterator():
        with transaction.atomic():
            secret = WorkspaceSecret.objects.select_for_update().get(pk=secret_id)
            WorkspaceSecret.objects.filter(pk=secret.pk).update(
                ciphertext=fernet.rotate(secret.ciphertext.encode()).decode()
            )
        rotated += 1
    audit_record(workspace=None, action="secret.rotated", actor_label="cli", after={"count": rotated})
    logger.info("guardrails.secrets.rotated", extra={"count": rotated})
    return rotated
