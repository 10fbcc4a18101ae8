"""Tenancy's writes: workspaces, their grants and API keys, admin users and their TOTP devices.

Views, admin actions and commands call these, nothing else.
"""

from dataclasses import dataclass
from datetime import datetime
from functools import partial

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone
from django.utils.text import slugify
from django_otp.plugins.otp_totp.models import TOTPDevice
from guardian.shortcuts import assign_perm

from tenancy.audit import audit_record
from tenancy.keys import DISPLAY_PREFIX_LENGTH, generate_key, key_digest
from tenancy.models import ApiKey, Workspace
from tenancy.signals import api_key_revoked


@dataclass(frozen=True)
class IssuedKey:
    """A key as issued: the plain key exists only here, for the one time it is shown."""

    api_key: ApiKey
    key: str


def _unique_slug(name: str) -> str:
    base = slugify(name)[:70] or "workspace"
    slug, number = base, 1
    while Workspace.objects.filter(slug=slug).exists():
        number += 1
        slug = f"{base}-{number}"
    return slug


@transaction.atomic
def workspace_create(
    *, name: str, created_by: AbstractBaseUser | None = None, product_base_url: str = ""
) -> tuple[Workspace, IssuedKey, IssuedKey]:
    """A new tenant with a write key and a secret key; its creator may view and change it."""
    workspace = Workspace.objects.create(
        name=name.strip(), slug=_unique_slug(name), product_base_url=product_base_url
    )
    write_key = api_key_create(
        workspace=workspace, name="Default write key", kind=ApiKey.Kind.WRITE, created_by=created_by
    )
    secret_key = api_key_create(
        workspace=workspace, name="Default secret key", kind=ApiKey.Kind.SECRET, created_by=created_by
    )
    if created_by is not None and not created_by.is_superuser:
        workspace_grant(workspace=workspace, user=created_by, can_change=True)
    return workspace, write_key, secret_key


def workspace_paths_published(*, workspace: Workspace, at: datetime) -> None:
    """Record the first publish of a path: from then on ingestion evaluates progress."""
    Workspace.objects.filter(pk=workspace.pk, paths_published_at__isnull=True).update(paths_published_at=at)
    if workspace.paths_published_at is None:
        workspace.paths_published_at = at


def workspace_grant(*, workspace: Workspace, user: AbstractBaseUser, can_change: bool) -> None:
    """Let an admin user see (and, with can_change, edit) one workspace in the admin."""
    assign_perm("onboarding.view_workspace", user, workspace)
    if can_change:
        assign_perm("onboarding.change_workspace", user, workspace)


@transaction.atomic
def api_key_create(
    *,
    workspace: Workspace,
    name: str,
    kind: str,
    created_by: AbstractBaseUser | None = None,
) -> IssuedKey:
    key = generate_key(kind)
    api_key = ApiKey.objects.create(
        workspace=workspace,
        name=name,
        kind=kind,
        scopes=list(ApiKey.DEFAULT_SCOPES[kind]),
        prefix=key[:DISPLAY_PREFIX_LENGTH],
        key_digest=key_digest(key),
        created_by=created_by,
    )
    audit_record(
        workspace=workspace,
        action="api_key.created",
        actor=created_by,
        actor_label="" if created_by is not None else "cli",
        obj=api_key,
        after={"name": name, "kind": kind, "prefix": api_key.prefix, "scopes": api_key.scopes},
    )
    return IssuedKey(api_key=api_key, key=key)


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey, actor: AbstractBaseUser | None = None) -> ApiKey:
    """Revoke a key at once; revoking twice keeps the first time (and is recorded once). Open
    debugger sockets authenticated by it close once the revocation commits."""
    revoked = ApiKey.objects.filter(pk=api_key.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
    api_key.refresh_from_db(fields=["revoked_at"])
    if revoked:
        transaction.on_commit(partial(api_key_revoked.send, sender=ApiKey, api_key_id=api_key.pk))
        audit_record(
            workspace=api_key.workspace,
            action="api_key.revoked",
            actor=actor,
            actor_label="" if actor is not None else "cli",
            obj=api_key,
            before={"revoked_at": None},
            after={"revoked_at": api_key.revoked_at.isoformat()},
        )
    return api_key


def api_key_mark_used(*, api_key: ApiKey, at: datetime) -> None:
    """Record use at most once a minute per key, outside the request's transaction."""
    if api_key.last_used_at is None or (at - api_key.last_used_at).total_seconds() > 60:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=at)


class AlreadyEnrolled(Exception):
    """The admin user has a TOTP device already; replacing it must be asked for."""


@transaction.atomic
def admin_user_create(*, username: str, password: str, email: str = "") -> AbstractBaseUser:
    """A staff user who is not a superuser: it sees only the workspaces granted to it."""
    return get_user_model().objects.create_user(
        username=username, password=password, email=email, is_staff=True
    )


@transaction.atomic
def totp_device_enrol(
    *, user: AbstractBaseUser, replace: bool = False, name: str = "Authenticator app"
) -> TOTPDevice:
    """A confirmed TOTP device for an admin user; with replace, their other TOTP devices go."""
    devices = TOTPDevice.objects.filter(user=user)
    if devices.exists():
        if not replace:
            raise AlreadyEnrolled(f"{user.get_username()} already has a TOTP device")
        devices.delete()
    return TOTPDevice.objects.create(user=user, name=name, confirmed=True)
