"""The path planner: which onboarding path a new end user starts on, and why.

One entry point, `choose_path`, returning a PathDecision with a reason the admin shows on the
end user's page. The order: the registered deciders (paths.deciders: experiments, then the
model), then the rules, then the workspace default. A decider that fails is skipped and the
reason says so.
"""

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from core.db.prepared import PreparedQuery
from paths import deciders
from paths.models import Path, PathVersion
from tenancy.models import EndUser

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PathDecision:
    path_version: PathVersion | None
    reason: str
    source: str  # a decider's source ("experiment", "model"), "rules", "default" or "none"
    record: Any = None  # what the deciding decider writes with the enrollment (record_choices)
    decider: str = ""  # the source of the decider that decided, when it reports another source


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


def eligible_versions(*, end_user: EndUser, published: list[PathVersion]) -> list[PathVersion]:
    """The published versions this user may be put on: those whose path's audience matches (a path
    without an audience matches everyone), in the planner's order; the ML layer chooses among them."""
    return [version for version in published if audience_matches(version.path, end_user)]


_PUBLISHED = PreparedQuery(
    lambda workspace_id, status: (
        PathVersion.objects.filter(path__workspace_id=workspace_id, status=status)
        .select_related("path")
        .order_by("-path__priority", "path__key")
    ),
    -1,
    "-",
)


def published_versions(*, workspace_id: int) -> list[PathVersion]:
    """A workspace's published versions in the planner's order (read once per batch; compiled
    once per process: every identify asks)."""
    return _PUBLISHED.all(workspace_id, PathVersion.Status.PUBLISHED.value)


def prepare(*, workspace_id: int, end_user_ids: Sequence[int]) -> dict[str, Any]:
    """What each decider reads once for a batch of users, by source; a failing one is left out
    (its decide() then gets None and should decline)."""
    prepared: dict[str, Any] = {}
    for decider in deciders.deciders():
        try:
            prepared[decider.source] = decider.prepare(workspace_id=workspace_id, end_user_ids=end_user_ids)
        except Exception:
            logger.exception("planner.decider.prepare_failed", extra={"source": decider.source})
    return prepared


def _decided(end_user: EndUser, published: list[PathVersion], prepared: dict[str, Any]) -> tuple:
    """The first decider's decision (its reason led by the failures of the deciders before it), or
    None and those failures."""
    failures = []
    for decider in deciders.deciders():
        try:
            choice = decider.decide(
                end_user=end_user, published=published, prepared=prepared.get(decider.source)
            )
        except Exception as error:
            logger.exception(
                "planner.decider.failed", extra={"source": decider.source, "end_user_id": end_user.pk}
            )
            failures.append(f"{decider.source} failed ({type(error).__name__}: {error})")
            continue
        if choice is not None:
            source = choice.source or decider.source
            reason = "; ".join([*failures, choice.reason])
            return PathDecision(choice.path_version, reason, source, choice.record, decider.source), []
    return None, failures


def choose_path(
    *, end_user: EndUser, published: list[PathVersion] | None = None, prepared: dict[str, Any] | None = None
) -> PathDecision:
    """The registered deciders' choice, else the rules' choice (below), with the failure of any
    decider in the reason. `published` and `prepared` let a caller deciding for many users read
    the workspace's versions and the deciders' data once."""
    if published is None:
        published = published_versions(workspace_id=end_user.workspace_id)
    if prepared is None:
        prepared = prepare(workspace_id=end_user.workspace_id, end_user_ids=[end_user.pk])
    decision, failures = _decided(end_user, published, prepared)
    if decision is not None:
        return decision
    decision = choose_by_rules(end_user=end_user, published=published)
    if failures:
        reason = f"{'; '.join(failures)}; {decision.reason}"
        return PathDecision(decision.path_version, reason, decision.source)
    return decision


def record_choices(chosen: list[tuple[Any, PathDecision]]) -> None:
    """Let each decider write what its choices need for the enrollments just inserted, in the
    caller's transaction; `chosen` pairs an inserted enrollment with its decision."""
    by_source: dict[str, list[tuple[Any, Any]]] = {}
    for enrollment, decision in chosen:
        if decision.record is not None:
            by_source.setdefault(decision.decider or decision.source, []).append(
                (enrollment, decision.record)
            )
    for source, items in by_source.items():
        decider = deciders.decider_of(source)
        if decider is not None:
            decider.record(chosen=items)


def choose_by_rules(*, end_user: EndUser, published: list[PathVersion]) -> PathDecision:
    """The highest-priority published path whose audience matches, else the workspace default.

    A default path without any audience is only the fallback: it does not compete on priority.
    Ties on priority go to the path key, so the choice is deterministic.
    """
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
