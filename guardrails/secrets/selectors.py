"""Reads of workspace secrets: one credential's plain value, for the gateway that sends with it.

`InvalidToken` (cryptography's) is what a read raises when no configured key opens the value.
"""

from cryptography.fernet import InvalidToken

from guardrails.models import WorkspaceSecret
from guardrails.secrets.encryption import secret_decrypt
from tenancy.models import Workspace

__all__ = ["InvalidToken", "workspace_secret_get"]


def workspace_secret_get(*, workspace: Workspace, name: str) -> str | None:
    """The plain value of the workspace's credential, or None when it has none by that name."""
    ciphertext = (
        WorkspaceSecret.objects.filter(workspace=workspace, name=name)
        .values_list("ciphertext", flat=True)
        .first()
    )
    return secret_decrypt(ciphertext) if ciphertext is not None else None
