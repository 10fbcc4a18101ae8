"""The path planner: which onboarding path a new end user starts on, and why.

One entry point, `choose_path`, returning a PathDecision with a reason the admin shows on the
end user's page. Today it is rules then the workspace default; experiments and the model go in
front of the rules later, behind the same function.
"""

from dataclasses import dataclass

from paths.models import Path, PathVersion
from tenancy.models import EndUser


@dataclass(frozen=True, slots=True)
class PathDecision:
    path_version: PathVersion | None
    reason: str
    source: str  # "rules", "default" or "none"


def _normalised(value) -> str:
    return str(value).strip().casefold()


def _audience(path: Path) -> dict[str, list]:
    """Feature -> accepted values, for the audience lists that are set."""
    return {
        feature: getattr(path, field_name)
        for feature, field_name in Path.AUDIENCE_FIELDS.items()
        if getattr(path, field_name)
    }


def audience_matches(path: Path, end_user: EndUser) -> bool:
    """Every audience list that is set contains the user's value (case-insensitive)."""
    for feature, accepted in _audience(path).items():
        value = getattr(end_user, feature, "") or ""
        if not value or _normalised(value) not in {_normalised(item) for item in accepted}:
            return False
    return True


def _match_reason(path: Path, end_user: EndUser) -> str:
    audience = _audience(path)
    if not audience:
        return f"matched everyone (path '{path.key}' has no audience), priority {path.priority}"
    matched = ", ".join(f"{feature}={getattr(end_user, feature)}" for feature in audience)
    return f"matched {matched}, priority {path.priority}"


def published_versions(*, workspace_id: int) -> list[PathVersion]:
    """A workspace's published versions in the planner's order (read once per batch)."""
    return list(
        PathVersion.objects.filter(path__workspace_id=workspace_id, status=PathVersion.Status.PUBLISHED)
        .select_related("path")
        .order_by("-path__priority", "path__key")
    )


def choose_path(*, end_user: EndUser, published: list[PathVersion] | None = None) -> PathDecision:
    """The highest-priority published path whose audience matches, else the workspace default.

    A default path without any audience is only the fallback: it does not compete on priority.
    Ties on priority go to the path key, so the choice is deterministic. `published` lets a
    caller deciding for many users read the workspace's versions once.
    """
    if published is None:
        published = published_versions(workspace_id=end_user.workspace_id)
    for path_version in published:
        path = path_version.path
        if path.is_default and not _audience(path):
            continue
        if audience_matches(path, end_user):
            return PathDecision(path_version, _match_reason(path, end_user), "rules")
    for path_version in published:
        if path_version.path.is_default:
            reason = f"no audience matched; workspace default path '{path_version.path.key}'"
            return PathDecision(path_version, reason, "default")
    default = Path.objects.filter(workspace_id=end_user.workspace_id, is_default=True).first()
    if default is not None:
        reason = f"no audience matched; the default path '{default.key}' has no published version"
    else:
        reason = "no audience matched and the workspace has no default path"
    return PathDecision(None, reason, "none")
