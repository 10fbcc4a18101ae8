"""Export a workspace's paths to a JSON document and import one back, so teams keep paths in git.

Document: {"format": "onboarding-paths/1", "paths": [{"key", "name", "description", "audience":
{"persona": [...], ...}, "priority", "is_default", "versions": [{"number", "status", "changelog",
"steps": [step dicts, in order]}]}]}. No ids, no timestamps: the same paths give the same file.

Import is idempotent. A path new to the workspace is created with its whole version history. For
a path that exists, the file's latest version is compared with the workspace's latest: equal
means nothing to do; different means a new draft with the file's steps (or the open draft is
updated), published too with `publish=True`. Unversioned settings (name, audience, priority,
default) are updated in place. Everything is validated first; any error changes nothing.
"""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from paths import services
from paths.diff import steps_diff
from paths.models import Path, PathVersion, Step
from paths.steps import SLUG, step_as_dict, step_model_values, step_normalized, steps_errors
from tenancy import services as tenancy_services
from tenancy.models import Workspace

FORMAT = "onboarding-paths/1"


class ImportInvalid(services.PathError):
    def __init__(self, errors: list[str]):
        self.errors = errors
        super().__init__("\n".join(errors))


# --- Export ---------------------------------------------------------------------------------


def _audience(path: Path) -> dict[str, list[str]]:
    return {feature: list(getattr(path, field)) for feature, field in Path.AUDIENCE_FIELDS.items()}


def paths_export(*, workspace: Workspace) -> dict[str, Any]:
    paths = Path.objects.filter(workspace=workspace).order_by("key").prefetch_related("versions__steps")
    return {
        "format": FORMAT,
        "paths": [
            {
                "key": path.key,
                "name": path.name,
                "description": path.description,
                "audience": _audience(path),
                "priority": path.priority,
                "is_default": path.is_default,
                "versions": [
                    {
                        "number": version.number,
                        "status": version.status,
                        "changelog": version.changelog,
                        "steps": [
                            step_as_dict(step)
                            for step in sorted(version.steps.all(), key=lambda step: (step.order, step.pk))
                        ],
                    }
                    for version in sorted(path.versions.all(), key=lambda version: version.number)
                ],
            }
            for path in paths
        ],
    }


# --- Validation -----------------------------------------------------------------------------


def _path_errors(data: Any, number: int, *, publish: bool) -> list[str]:
    if not isinstance(data, dict):
        return [f"path {number}: must be an object"]
    key = data.get("key")
    where = f"path '{key}'" if isinstance(key, str) and key else f"path {number}"
    errors = []
    if not isinstance(key, str) or not SLUG.match(key):
        errors.append(f"{where}: key must be letters, digits, '-' or '_'")
    if not isinstance(data.get("name"), str) or not data["name"].strip():
        errors.append(f"{where}: needs a name")
    audience = data.get("audience", {})
    if not isinstance(audience, dict):
        errors.append(f"{where}: audience must be an object")
    else:
        for feature, values in audience.items():
            if feature not in Path.AUDIENCE_FIELDS:
                errors.append(
                    f"{where}: unknown audience feature '{feature}' ({', '.join(Path.AUDIENCE_FIELDS)})"
                )
            elif not isinstance(values, list) or not all(isinstance(value, str) for value in values):
                errors.append(f"{where}: audience '{feature}' must be a list of text values")
    if not isinstance(data.get("priority", 0), int) or isinstance(data.get("priority"), bool):
        errors.append(f"{where}: priority must be a whole number")
    if not isinstance(data.get("is_default", False), bool):
        errors.append(f"{where}: is_default must be true or false")
    versions = data.get("versions")
    if not isinstance(versions, list) or not versions:
        return [*errors, f"{where}: needs at least one version"]
    numbers = [version.get("number") for version in versions if isinstance(version, dict)]
    if len(set(numbers)) != len(numbers):
        errors.append(f"{where}: version numbers must be unique")
    published = [
        version for version in versions if isinstance(version, dict) and version.get("status") == "published"
    ]
    if len(published) > 1:
        errors.append(f"{where}: only one version may be published")
    latest_number = max((n for n in numbers if isinstance(n, int)), default=None)
    for version in versions:
        if not isinstance(version, dict):
            errors.append(f"{where}: each version must be an object")
            continue
        version_number = version.get("number")
        if not isinstance(version_number, int) or isinstance(version_number, bool) or version_number < 1:
            errors.append(f"{where}: version number {version_number!r} must be a whole number from 1")
            continue
        label = f"{where} v{version_number}"
        if version.get("status") not in PathVersion.Status.values:
            errors.append(f"{label}: status must be one of {', '.join(PathVersion.Status.values)}")
        steps = version.get("steps")
        if not isinstance(steps, list):
            errors.append(f"{label}: steps must be a list")
            continue
        for_publish = version.get("status") == "published" or (publish and version_number == latest_number)
        errors.extend(f"{label}: {error}" for error in steps_errors(steps, for_publish=for_publish))
    return errors


def document_errors(data: Any, *, publish: bool = False) -> list[str]:
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        return [f'not a paths file: expected an object with "format": "{FORMAT}"']
    paths = data.get("paths")
    if not isinstance(paths, list):
        return ['"paths" must be a list']
    errors = []
    for number, path in enumerate(paths, start=1):
        errors.extend(_path_errors(path, number, publish=publish))
    keys = [path.get("key") for path in paths if isinstance(path, dict)]
    for key in sorted({key for key in keys if keys.count(key) > 1}, key=str):
        errors.append(f"path '{key}': appears more than once")
    if sum(1 for path in paths if isinstance(path, dict) and path.get("is_default") is True) > 1:
        errors.append("only one path may be the default")
    return errors


# --- Import ---------------------------------------------------------------------------------


def _restore_version(
    *, path: Path, data: dict[str, Any], imported_by: AbstractBaseUser | None
) -> PathVersion:
    """A version with its history status, as exported (new paths only)."""
    now = timezone.now()
    status = data["status"]
    version = PathVersion.objects.create(
        path=path,
        number=data["number"],
        status=status,
        changelog=data.get("changelog", ""),
        created_by=imported_by,
        published_at=now if status == PathVersion.Status.PUBLISHED else None,
        published_by=imported_by if status == PathVersion.Status.PUBLISHED else None,
        archived_at=now if status == PathVersion.Status.ARCHIVED else None,
    )
    if status != PathVersion.Status.DRAFT:
        tenancy_services.workspace_paths_published(workspace=path.workspace, at=now)
    Step.objects.bulk_create(
        Step(path_version=version, order=order, **step_model_values(step))
        for order, step in enumerate(data["steps"], start=1)
    )
    return version


def _create_path(
    *, workspace: Workspace, data: dict[str, Any], imported_by: AbstractBaseUser | None, publish: bool
) -> list[str]:
    path = services.path_create(
        workspace=workspace,
        key=data["key"],
        name=data["name"],
        description=data.get("description", ""),
        audience=data.get("audience"),
        priority=data.get("priority", 0),
        is_default=data.get("is_default", False),
        created_by=imported_by,
        with_draft=False,
    )
    versions = sorted(data["versions"], key=lambda version: version["number"])
    for version in versions:
        _restore_version(path=path, data=version, imported_by=imported_by)
    summary = ", ".join(f"v{version['number']} ({version['status']})" for version in versions)
    lines = [f"path '{path.key}': created with {summary}"]
    latest = path.versions.order_by("-number").first()
    if publish and latest.status == PathVersion.Status.DRAFT:
        services.path_version_publish(path_version=latest, published_by=imported_by)
        lines.append(f"path '{path.key}': v{latest.number} published")
    return lines


def _update_path(
    *, path: Path, data: dict[str, Any], imported_by: AbstractBaseUser | None, publish: bool
) -> list[str]:
    lines = []
    audience = {feature: list(data.get("audience", {}).get(feature, [])) for feature in Path.AUDIENCE_FIELDS}
    changed = [
        field
        for field, current, wanted in (
            ("name", path.name, data["name"]),
            ("description", path.description, data.get("description", "")),
            ("priority", path.priority, data.get("priority", 0)),
            ("is_default", path.is_default, data.get("is_default", False)),
            ("audience", _audience(path), audience),
        )
        if current != wanted
    ]
    if changed:
        services.path_update(
            path=path,
            name=data["name"],
            description=data.get("description", ""),
            priority=data.get("priority", 0),
            is_default=data.get("is_default", False),
            audience=audience,
        )
        lines.append(f"path '{path.key}': {', '.join(changed)} updated")
    wanted = max(data["versions"], key=lambda version: version["number"])
    wanted_steps = [step_normalized(step) for step in wanted["steps"]]
    latest = path.versions.order_by("-number").first()
    current_steps = [step_as_dict(step) for step in latest.steps.order_by("order", "pk")] if latest else []
    if latest is not None and current_steps == wanted_steps:
        if publish and latest.status == PathVersion.Status.DRAFT:
            services.path_version_publish(path_version=latest, published_by=imported_by)
            lines.append(f"path '{path.key}': v{latest.number} published")
        return lines
    if latest is not None and latest.status == PathVersion.Status.DRAFT:
        draft = latest
        services.path_version_update(path_version=draft, changelog=wanted.get("changelog", ""))
        action = "updated"
    elif latest is not None:
        draft = services.path_version_create_draft(
            source=latest, created_by=imported_by, changelog=wanted.get("changelog", "")
        )
        action = "created"
    else:
        draft = PathVersion.objects.create(path=path, number=1, created_by=imported_by)
        action = "created"
    services.path_version_replace_steps(path_version=draft, steps=wanted_steps)
    lines.append(f"path '{path.key}': draft v{draft.number} {action}")
    lines.extend(f"  {change}" for change in steps_diff(current_steps, wanted_steps))
    if publish:
        services.path_version_publish(path_version=draft, published_by=imported_by)
        lines.append(f"path '{path.key}': v{draft.number} published")
    return lines


@transaction.atomic
def paths_import(
    *,
    workspace: Workspace,
    data: Any,
    publish: bool = False,
    imported_by: AbstractBaseUser | None = None,
) -> list[str]:
    """Apply a paths document to the workspace; returns one line per change (none: no change).
    Raises ImportInvalid listing every problem, with its path, version and step."""
    errors = document_errors(data, publish=publish)
    if errors:
        raise ImportInvalid(errors)
    existing = {path.key: path for path in Path.objects.filter(workspace=workspace)}
    lines = []
    try:
        for path_data in data["paths"]:
            path = existing.get(path_data["key"])
            if path is None:
                lines += _create_path(
                    workspace=workspace, data=path_data, imported_by=imported_by, publish=publish
                )
            else:
                lines += _update_path(path=path, data=path_data, imported_by=imported_by, publish=publish)
    except services.VersionInvalid as error:
        raise ImportInvalid(error.errors) from error
    return lines
