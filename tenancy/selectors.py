"""Reads. Every one takes the workspace (or the admin user whose workspaces it may see)."""

from datetime import datetime

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


SEGMENT_TRAITS = ("persona", "signup_source", "company_size", "use_case")


def end_users_in_segment(
    *,
    workspace: Workspace,
    segment: dict[str, str],
    created_from: datetime | None = None,
    created_before: datetime | None = None,
) -> QuerySet:
    """(id, created_at and the segment traits) of the workspace's end users whose traits equal
    `segment` (keys from SEGMENT_TRAITS), optionally created in [created_from, created_before);
    for analytics' raw aggregates, which embed it as a subquery."""
    end_users = EndUser.objects.filter(
        workspace=workspace, **{trait: value for trait, value in segment.items() if trait in SEGMENT_TRAITS}
    )
    if created_from is not None:
        end_users = end_users.filter(created_at__gte=created_from)
    if created_before is not None:
        end_users = end_users.filter(created_at__lt=created_before)
    return end_users.values("id", "created_at", *SEGMENT_TRAITS)
