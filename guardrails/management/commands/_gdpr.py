"""What the GDPR commands share: the workspace named by slug or id."""

from django.core.management.base import CommandError

from tenancy import selectors
from tenancy.models import Workspace


def workspace_named(value: str) -> Workspace:
    workspace = selectors.workspace_get_by_slug(slug=value)
    if workspace is None and value.isdigit():
        workspace = Workspace.objects.filter(pk=int(value)).first()
    if workspace is None:
        raise CommandError(f"No workspace with the slug or id {value!r}.")
    return workspace
