"""Reads. Every one takes the workspace (or the admin user whose workspaces it may see)."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import QuerySet
from guardian.shortcuts import get_objects_for_user

from core.db.prepared import PreparedQuery
from tenancy.keys import key_digest
from tenancy.models import ApiKey, EndUser, Workspace


def api_key_get_by_key(*, key: str) -> ApiKey | None:
    """The key (active or revoked) with this plain value, with its workspace, or None.

    Every API request starts here, so the query is built once per process (prepared.py). Not
    cached: a revoked key fails at once.
    """
    found = _API_KEY_WITH_WORKSPACE.all(key_digest(key))
    return found[0] if found else None


_API_KEY_WITH_WORKSPACE = PreparedQuery(
    lambda digest: ApiKey.objects.select_related("workspace").filter(key_digest=digest).order_by(), ""
)


def api_key_is_active(*, workspace_id: int, api_key_id: int) -> bool:
    """Whether the key still exists unrevoked in the workspace (an open socket's re-check)."""
    return ApiKey.objects.filter(pk=api_key_id, workspace_id=workspace_id, revoked_at__isnull=True).exists()


def workspaces_for_admin(*, user: AbstractBaseUser, permission: str = "view") -> QuerySet[Workspace]:
    """The workspaces an admin user was granted (django-guardian); all of them for a superuser."""
    if user.is_superuser:
        return Workspace.objects.all()
    return get_objects_for_user(
        user, f"onboarding.{permission}_workspace", klass=Workspace, accept_global_perms=False
    )


def end_user_get(*, workspace: Workspace, external_id: str) -> EndUser | None:
    return EndUser.objects.filter(workspace=workspace, external_id=external_id).first()


def workspace_get_by_slug(*, slug: str) -> Workspace | None:
    return Workspace.objects.filter(slug=slug).first()
