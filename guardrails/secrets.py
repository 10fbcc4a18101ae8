"""Provider credentials per workspace, encrypted at rest (Fernet: AES-128-CBC + HMAC-SHA256).

Keys come from SECRETS_ENCRYPTION_KEY (comma-separated; the first encrypts, every one decrypts),
so rotating is: put the new key first, run `manage.py secrets_rotate`, drop the old key. Without
a key (development, tests) one is derived from SECRET_KEY; production must set one (a deploy
check in guardrails/checks.py says so).
"""

import base64
import functools
import hashlib
import logging

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import transaction

from guardrails.models import WorkspaceSecret
from tenancy.audit import REDACTED, audit_record
from tenancy.models import Workspace

logger = logging.getLogger(__name__)

__all__ = [
    "InvalidToken",
    "secret_decrypt",
    "secret_encrypt",
    "workspace_secret_get",
    "workspace_secret_set",
    "workspace_secrets_rotate",
]


def development_key(secret_key: str) -> str:
    """A Fernet key derived from SECRET_KEY, for environments without SECRETS_ENCRYPTION_KEY."""
    digest = hashlib.sha256(b"workspace-secrets:" + secret_key.encode()).digest()
    return base64.urlsafe_b64encode(digest).decode()


@functools.lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    return MultiFernet([Fernet(key.encode()) for key in keys])


def _current_fernet() -> MultiFernet:
    keys = tuple(key.strip() for key in settings.SECRETS_ENCRYPTION_KEY if key.strip())
    return _fernet(keys or (development_key(settings.SECRET_KEY),))


def secret_encrypt(value: str) -> str:
    return _current_fernet().encrypt(value.encode()).decode()


def secret_decrypt(ciphertext: str) -> str:
    """The plain value; InvalidToken when no configured key opened it."""
    return _current_fernet().decrypt(ciphertext.encode()).decode()


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


def workspace_secret_get(*, workspace: Workspace, name: str) -> str | None:
    """The plain value of the workspace's credential, or None when it has none by that name."""
    ciphertext = (
        WorkspaceSecret.objects.filter(workspace=workspace, name=name)
        .values_list("ciphertext", flat=True)
        .first()
    )
    return secret_decrypt(ciphertext) if ciphertext is not None else None


def workspace_secrets_rotate() -> int:
    """Re-encrypt every secret with the first key; returns how many rows were rewritten."""
    fernet = _current_fernet()
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
