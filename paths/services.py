"""Writes to paths. A published or archived PathVersion and its steps never change: every step
write checks, under a row lock, that its version is still a draft."""

import logging
from collections.abc import Mapping
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Max
from django.utils import timezone

from paths.diff import steps_diff
from paths.models import Path, PathVersion, Step
from paths.steps import step_as_dict, step_errors, step_model_values, steps_errors
from tenancy import services as tenancy_services
from tenancy.models import Workspace

logger = logging.getLogger(__name__)


class PathError(Exception):
    """A refused path write; the message is meant for the admin user."""


class VersionNotEditable(PathError):
    pass


class VersionInvalid(PathError):
    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("; ".join(errors))


# --- Paths ----------------------------------------------------------------------------------


def _audience_values(audience: Mapping[str, list[str]] | None) -> dict[str, list[str]]:
    audience = audience or {}
    unknown = set(audience) - set(Path.AUDIENCE_FIELDS)
    if unknown:
        raise PathError(f"unknown audience feature(s): {', '.join(sorted(unknown))}")
    return {field: list(audience.get(feature) or []) for feature, field in Path.AUDIENCE_FIELDS.items()}


def _take_default(path: Path) -> None:
    """One default per workspace: the new default takes over from the old one."""
    Path.objects.filter(workspace_id=path.workspace_id, is_default=True).exclude(pk=path.pk).update(
        is_default=False
    )


@transaction.atomic
def path_create(
    *,
    workspace: Workspace,
    key: str,
    name: str,
    description: str = "",
    audience: Mapping[str, list[str]] | None = None,
    priority: int = 0,
    is_default: bool = False,
    created_by: AbstractBaseUser | None = None,
    with_draft: bool = True,
) -> Path:
    """A new path with an empty draft v1 to put its steps in (without it: no version yet)."""
    if Path.objects.filter(workspace=workspace, key=key).exists():
        raise PathError(f"a path with key '{key}' already exists in {workspace}")
    path = Path(
        workspace=workspace,
        key=key,
        name=name,
        description=description,
        priority=priority,
        is_default=False,
        **_audience_values(audience),
    )
    path.save()
    if is_default:
        _take_default(path)
        path.is_default = True
        path.save(update_fields=["is_default"])
    if with_draft:
        PathVersion.objects.create(path=path, number=1, created_by=created_by)
    logger.info("paths.path.created", extra={"workspace_id": workspace.pk, "path_id": path.pk})
    return path


@transaction.atomic
def path_update(
    *,
    path: Path,
    name: str | None = None,
    description: str | None = None,
    audience: Mapping[str, list[str]] | None = None,
    priority: int | None = None,
    is_default: bool | None = None,
) -> Path:
    """Targeting and labels; they are not versioned (the steps are). None leaves a field as is."""
    path = Path.objects.select_for_update().get(pk=path.pk)
    for field, value in (("name", name), ("description", description), ("priority", priority)):
        if value is not None:
            setattr(path, field, value)
    if audience is not None:
        for field, values in _audience_values(audience).items():
            setattr(path, field, values)
    if is_default is not None:
        if is_default:
            _take_default(path)
        path.is_default = is_default
    path.save()
    return path


# --- Versions -------------------------------------------------------------------------------


def _lock_path(path_id: int) -> Path:
    return Path.objects.select_for_update().get(pk=path_id)


def _locked_draft(path_version: PathVersion) -> PathVersion:
    locked = PathVersion.objects.select_for_update().select_related("path").get(pk=path_version.pk)
    if not locked.is_editable:
        raise VersionNotEditable(
            f"{locked.path.name} v{locked.number} is {locked.status}: published and archived versions "
            "never change. Clone it to a new draft to make changes."
        )
    return locked


def _step_dicts(path_version: PathVersion) -> list[dict[str, Any]]:
    return [step_as_dict(step) for step in path_version.steps.order_by("order", "pk")]


@transaction.atomic
def path_version_create_draft(
    *, source: PathVersion, created_by: AbstractBaseUser | None = None, changelog: str = ""
) -> PathVersion:
    """A new draft (number = highest + 1) holding a copy of the source version's steps."""
    path = _lock_path(source.path_id)
    draft = path.versions.filter(status=PathVersion.Status.DRAFT).first()
    if draft is not None:
        raise PathError(f"{path.name} already has a draft (v{draft.number}): edit or archive it first.")
    number = (path.versions.aggregate(highest=Max("number"))["highest"] or 0) + 1
    new_version = PathVersion.objects.create(
        path=path,
        number=number,
        created_by=created_by,
        changelog=changelog or f"Cloned from v{source.number}.",
    )
    Step.objects.bulk_create(
        Step(path_version=new_version, order=step.order, **step_model_values(step_as_dict(step)))
        for step in source.steps.order_by("order", "pk")
    )
    logger.info(
        "paths.version.cloned",
        extra={"path_id": path.pk, "source_number": source.number, "number": number},
    )
    return new_version


@transaction.atomic
def path_version_update(*, path_version: PathVersion, changelog: str) -> PathVersion:
    locked = _locked_draft(path_version)
    locked.changelog = changelog
    locked.save(update_fields=["changelog"])
    return locked


def path_version_errors(*, path_version: PathVersion) -> list[str]:
    """What stands between this version and publishing."""
    return steps_errors(_step_dicts(path_version), for_publish=True)


@transaction.atomic
def path_version_publish(
    *, path_version: PathVersion, published_by: AbstractBaseUser | None = None
) -> PathVersion:
    """Publish a valid draft; the version published before it is archived. New enrollments go to
    the published version; running ones stay on the version they started on."""
    _lock_path(path_version.path_id)  # serializes publishes of one path
    locked = _locked_draft(path_version)
    errors = path_version_errors(path_version=locked)
    if errors:
        raise VersionInvalid(errors)
    now = timezone.now()
    previous = PathVersion.objects.filter(path_id=locked.path_id, status=PathVersion.Status.PUBLISHED)
    previous.update(status=PathVersion.Status.ARCHIVED, archived_at=now)
    locked.status = PathVersion.Status.PUBLISHED
    locked.published_at = now
    locked.published_by = published_by
    locked.save(update_fields=["status", "published_at", "published_by"])
    tenancy_services.workspace_paths_published(workspace=locked.path.workspace, at=now)
    logger.info("paths.version.published", extra={"path_id": locked.path_id, "number": locked.number})
    return locked


@transaction.atomic
def path_version_republish(
    *, path_version: PathVersion, published_by: AbstractBaseUser | None = None
) -> PathVersion:
    """Publish again a version that was published before and archived (an experiment's winning
    arm, say); it is immutable already, so nothing is re-checked. The published one is archived."""
    _lock_path(path_version.path_id)
    locked = PathVersion.objects.select_for_update().select_related("path").get(pk=path_version.pk)
    if locked.status == PathVersion.Status.PUBLISHED:
        return locked
    if locked.status != PathVersion.Status.ARCHIVED or locked.published_at is None:
        raise PathError(f"v{locked.number} was never published: publish the draft instead.")
    now = timezone.now()
    previous = PathVersion.objects.filter(path_id=locked.path_id, status=PathVersion.Status.PUBLISHED)
    previous.update(status=PathVersion.Status.ARCHIVED, archived_at=now)
    locked.status, locked.published_at, locked.published_by, locked.archived_at = (
        PathVersion.Status.PUBLISHED,
        now,
        published_by,
        None,
    )
    locked.save(update_fields=["status", "published_at", "published_by", "archived_at"])
    tenancy_services.workspace_paths_published(workspace=locked.path.workspace, at=now)
    logger.info("paths.version.republished", extra={"path_id": locked.path_id, "number": locked.number})
    return locked


@transaction.atomic
def path_version_archive(*, path_version: PathVersion) -> PathVersion:
    """Retire a published version (no new enrollments) or discard a draft."""
    locked = PathVersion.objects.select_for_update().get(pk=path_version.pk)
    if locked.status == PathVersion.Status.ARCHIVED:
        raise PathError(f"v{locked.number} is already archived.")
    locked.status = PathVersion.Status.ARCHIVED
    locked.archived_at = timezone.now()
    locked.save(update_fields=["status", "archived_at"])
    logger.info("paths.version.archived", extra={"path_id": locked.path_id, "number": locked.number})
    return locked


def path_version_diff(*, old: PathVersion, new: PathVersion) -> list[str]:
    """Readable changes from `old` to `new`: "step 'invite' added", "step order changed: ..."."""
    return steps_diff(_step_dicts(old), _step_dicts(new))


# --- Steps (drafts only) --------------------------------------------------------------------


def _check_step(data: dict[str, Any]) -> None:
    errors = step_errors(data)
    if errors:
        raise VersionInvalid([f"step '{data.get('key')}': {error}" for error in errors])


@transaction.atomic
def step_create(
    *, path_version: PathVersion, key: str, title: str, order: int | None = None, **fields: Any
) -> Step:
    """Add a step to a draft; without `order` it goes last."""
    locked = _locked_draft(path_version)
    data = {"key": key, "title": title, **fields}
    _check_step(data)
    if locked.steps.filter(key=key).exists():
        raise VersionInvalid([f"step '{key}': duplicate key"])
    if order is None:
        order = (locked.steps.aggregate(highest=Max("order"))["highest"] or 0) + 1
    return Step.objects.create(path_version=locked, order=order, **step_model_values(data))


@transaction.atomic
def step_update(*, step: Step, **fields: Any) -> Step:
    """Change fields of a draft's step (any of paths.steps.STEP_FIELDS, and order)."""
    _locked_draft(step.path_version)
    step = Step.objects.get(pk=step.pk)
    order = fields.pop("order", None)
    order = step.order if order is None else order
    data = {**step_as_dict(step), **fields}
    _check_step(data)
    if step.path_version.steps.filter(key=data["key"]).exclude(pk=step.pk).exists():
        raise VersionInvalid([f"step '{data['key']}': duplicate key"])
    for field, value in step_model_values(data).items():
        setattr(step, field, value)
    step.order = order
    step.save()
    return step


@transaction.atomic
def step_delete(*, step: Step) -> None:
    _locked_draft(step.path_version)
    Step.objects.filter(pk=step.pk).delete()


@transaction.atomic
def steps_reorder(*, path_version: PathVersion, keys: list[str]) -> None:
    """Put a draft's steps in the order of `keys` (every key, once)."""
    locked = _locked_draft(path_version)
    steps = {step.key: step for step in locked.steps.all()}
    if sorted(keys) != sorted(steps):
        raise PathError(f"the new order must list every step once: {', '.join(sorted(steps))}")
    for order, key in enumerate(keys, start=1):
        steps[key].order = order
    Step.objects.bulk_update(steps.values(), ["order"])


@transaction.atomic
def path_version_replace_steps(*, path_version: PathVersion, steps: list[dict[str, Any]]) -> PathVersion:
    """Make a draft's steps exactly these step dicts, in this order (used by import)."""
    locked = _locked_draft(path_version)
    errors = steps_errors(steps, for_publish=False)
    if errors:
        raise VersionInvalid(errors)
    locked.steps.all().delete()
    Step.objects.bulk_create(
        Step(path_version=locked, order=order, **step_model_values(data))
        for order, data in enumerate(steps, start=1)
    )
    return locked
