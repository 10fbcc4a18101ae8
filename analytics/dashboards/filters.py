"""A dashboard's filters, read from the URL so that a view can be shared: the workspace (among
those granted to the admin through django-guardian; another one is a 404), a range of UTC days
(`to` inclusive, default the last 30 days), a path and one of its versions, and the end-user
segments. Every bad value becomes a message naming the field; the page says it (400), never a 500.
"""

from dataclasses import dataclass, field
from datetime import date, timedelta
from urllib.parse import urlencode

from django.http import Http404, HttpRequest
from django.utils import timezone

from analytics.funnels.query import RollupQuery
from analytics.nudges.metrics import NudgeQuery
from paths import selectors as paths_selectors
from paths.models import Path, PathVersion
from tenancy import selectors as tenancy_selectors
from tenancy.models import Workspace

SEGMENTS = ("persona", "signup_source", "company_size", "use_case")
DEFAULT_RANGE_DAYS = 30
MAX_RANGE_DAYS = 400
MAX_TEXT = 100


@dataclass
class DashboardFilters:
    workspace: Workspace | None
    workspaces: list[Workspace]
    date_from: date
    date_to: date
    path: Path | None = None
    version: PathVersion | None = None
    segments: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    given: dict[str, str] = field(default_factory=dict)  # the URL's filter values, as typed

    @property
    def path_version_ids(self) -> tuple[int, ...] | None:
        if self.version is not None:
            return (self.version.pk,)
        if self.path is not None:
            versions = paths_selectors.path_versions(workspace=self.workspace, path=self.path)
            return tuple(versions.values_list("pk", flat=True))
        return None

    def rollup_query(self, date_from: date | None = None, date_to: date | None = None) -> RollupQuery:
        return RollupQuery(
            self.workspace,
            date_from or self.date_from,
            date_to or self.date_to,
            self.path_version_ids,
            dict(self.segments),
        )

    def nudge_query(self) -> NudgeQuery:
        return NudgeQuery(
            workspace=self.workspace,
            date_from=self.date_from,
            date_to=self.date_to,
            path_key=self.path.key if self.path else None,
            path_version=self.version.number if self.version else None,
            **self.segments,
        )

    def querystring(self, **extra: str) -> str:
        """These filters (plus `extra`) as a query string: for links and CSV exports."""
        values = {
            "workspace": str(self.workspace.pk) if self.workspace else "",
            "from": self.date_from.isoformat(),
            "to": self.date_to.isoformat(),
            **{name: value for name, value in self.given.items() if name not in ("from", "to")},
            **extra,
        }
        return urlencode({name: value for name, value in values.items() if value not in ("", None)})


def _workspace(request: HttpRequest, workspaces: list[Workspace]) -> Workspace | None:
    wanted = request.GET.get("workspace", "").strip()
    if not wanted:
        return workspaces[0] if workspaces else None
    found = next((each for each in workspaces if str(each.pk) == wanted), None)
    if found is None:
        raise Http404("No such workspace among those granted to you.")
    return found


def _day(request: HttpRequest, name: str, errors: dict[str, str]) -> date | None:
    text = request.GET.get(name, "").strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        errors[name] = f"{text!r} is not a date: write it as YYYY-MM-DD."
        return None


def _range(request: HttpRequest, errors: dict[str, str]) -> tuple[date, date]:
    date_to = _day(request, "to", errors) or timezone.now().date()
    date_from = _day(request, "from", errors) or date_to - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    if date_from > date_to:
        errors["to"] = f"{date_to} is before from ({date_from})."
    elif (date_to - date_from).days + 1 > MAX_RANGE_DAYS:
        errors["from"] = f"The range spans more than {MAX_RANGE_DAYS} days (the longest range kept)."
    if errors.keys() & {"from", "to"}:
        date_to = timezone.now().date()
        date_from = date_to - timedelta(days=DEFAULT_RANGE_DAYS - 1)
    return date_from, date_to


def _path_and_version(
    request: HttpRequest, workspace: Workspace | None, errors: dict[str, str]
) -> tuple[Path | None, PathVersion | None]:
    key = request.GET.get("path", "").strip()
    number = request.GET.get("version", "").strip()
    if number and not key:
        errors["version"] = "A version needs its path: choose the path too."
    if not key or workspace is None:
        return None, None
    path = paths_selectors.path_get(workspace=workspace, key=key)
    if path is None:
        errors["path"] = f"No path {key!r} in {workspace.name}."
        return None, None
    if not number:
        return path, None
    if not number.isdigit() or not 0 < int(number) < 2**31:
        errors["version"] = f"{number!r} is not a version number."
        return path, None
    version = paths_selectors.path_versions(workspace=workspace, path=path).filter(number=int(number)).first()
    if version is None:
        errors["version"] = f"Path {key!r} has no version {number}."
    return path, version


def parse_filters(request: HttpRequest) -> DashboardFilters:
    """The filters in the request's URL; `errors` names each bad one (the others still apply)."""
    workspaces = list(tenancy_selectors.workspaces_for_admin(user=request.user).order_by("name", "pk"))
    workspace = _workspace(request, workspaces)
    errors: dict[str, str] = {}
    date_from, date_to = _range(request, errors)
    path, version = _path_and_version(request, workspace, errors)
    segments = {}
    for name in SEGMENTS:
        value = request.GET.get(name, "").strip()
        if len(value) > MAX_TEXT:
            errors[name] = f"At most {MAX_TEXT} characters."
        elif value:
            segments[name] = value
    given = {
        name: request.GET.get(name, "").strip()
        for name in ("from", "to", "path", "version", *SEGMENTS)
        if request.GET.get(name, "").strip() and name not in errors
    }
    return DashboardFilters(workspace, workspaces, date_from, date_to, path, version, segments, errors, given)
