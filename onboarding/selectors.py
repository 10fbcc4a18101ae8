"""Reads. Every one takes the workspace (or the admin user whose workspaces it may see)."""

from functools import cache

from django.contrib.auth.models import AbstractBaseUser
from django.db import connection
from django.db.models import QuerySet
from guardian.shortcuts import get_objects_for_user

from onboarding.keys import key_digest
from onboarding.models import ApiKey, EndUser, Event, Workspace


def api_key_get_by_key(*, key: str) -> ApiKey | None:
    """The key (active or revoked) with this plain value, with its workspace, or None.

    Every API request starts here, so the ORM builds this query once per process and connection
    vendor (building it each time cost more CPU than PostgreSQL spends answering it); the row is
    converted and turned into models as the ORM would. Not cached: a revoked key fails at once.
    """
    statement, converters = _api_key_lookup(connection.vendor)
    with connection.cursor() as cursor:
        cursor.execute(statement, [key_digest(key)])
        found = cursor.fetchone()
    if found is None:
        return None
    row = list(found)
    for position, (field_converters, expression) in converters.items():
        for converter in field_converters:
            row[position] = converter(row[position], expression, connection)
    key_fields, workspace_fields = _API_KEY_COLUMNS
    api_key = ApiKey.from_db(connection.alias, key_fields, row[: len(key_fields)])
    api_key.workspace = Workspace.from_db(connection.alias, workspace_fields, row[len(key_fields) :])
    return api_key


_API_KEY_COLUMNS = (
    [field.attname for field in ApiKey._meta.concrete_fields],
    [field.attname for field in Workspace._meta.concrete_fields],
)


@cache
def _api_key_lookup(vendor: str) -> tuple[str, dict]:
    """The lookup's SQL and its column converters, as the ORM writes them for this database."""
    queryset = ApiKey.objects.select_related("workspace").filter(key_digest="").order_by()
    compiler = queryset.query.get_compiler(connection=connection)
    statement, params = compiler.as_sql()
    selected = [column for column, _, _ in compiler.select]
    if params != ("",) or len(selected) != sum(map(len, _API_KEY_COLUMNS)):
        raise RuntimeError("The API key lookup no longer selects the key and workspace columns only.")
    return statement, compiler.get_converters(selected)


def workspaces_for_admin(*, user: AbstractBaseUser, permission: str = "view") -> QuerySet[Workspace]:
    """The workspaces an admin user was granted (django-guardian); all of them for a superuser."""
    if user.is_superuser:
        return Workspace.objects.all()
    return get_objects_for_user(
        user, f"onboarding.{permission}_workspace", klass=Workspace, accept_global_perms=False
    )


def end_user_get(*, workspace: Workspace, external_id: str) -> EndUser | None:
    return EndUser.objects.filter(workspace=workspace, external_id=external_id).first()


def events_for_end_user(*, workspace: Workspace, end_user: EndUser) -> QuerySet[Event]:
    return Event.objects.filter(workspace=workspace, end_user=end_user).order_by("timestamp")


def workspace_get_by_slug(*, slug: str) -> Workspace | None:
    return Workspace.objects.filter(slug=slug).first()
