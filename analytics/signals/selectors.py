"""Reads of survey signals and reports from object storage, always for one workspace."""

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from urllib.parse import quote, unquote

import orjson

from analytics.signals.storage import EnvironmentStorage

STAGES = ("pre", "post")
REPORT_FILES = ("summary.json", "report.html")


def signals_day_prefix(*, workspace_id: int, day: date) -> str:
    return f"signals/{workspace_id}/{day:%Y/%m/%d}/"


def report_prefix(*, workspace_id: int, label: str) -> str:
    return f"reports/{workspace_id}/{label}/"


def user_id_in_name(user_id: str) -> str:
    """A user id as object names start with it: percent-encoded, `-` too (as %2D), so the first
    literal `-` of a name ends the user id and one user id is never read as another's prefix."""
    return quote(user_id, safe="").replace("-", "%2D")


def signal_object_name(*, user_id: str, session_id: str, signal_id: str) -> str:
    """`<user id>-<session id>-<uuid>.json`, each part percent-encoded; unquoting the part before
    the uuid gives the correlation key `<user id>-<session id>`."""
    return f"{user_id_in_name(user_id)}-{quote(session_id, safe='')}-{signal_id}.json"


def signals_of_user(
    *, storage: EnvironmentStorage, workspace_id: int, user_id: str
) -> list[tuple[str, dict]]:
    """Every signal object of one person in a workspace, as (key, payload), oldest day first.

    Listed by the workspace's prefix (S3 pages through it), filtered on the object names, then
    confirmed on each payload's `user_id`: objects written before the names encoded `-` in the
    user id (`quote(user id)-...`) cannot tell user "u1" with session "x-1" from user "u1-x" with
    session "1", so the name only picks candidates and the payload decides."""
    starts = tuple({user_id_in_name(user_id) + "-", quote(user_id, safe="") + "-"})
    found = []
    for key in storage.list_keys(f"signals/{workspace_id}/"):
        if key.rsplit("/", 1)[-1].startswith(starts):
            document = orjson.loads(storage.get(key))
            if document.get("user_id") == user_id:
                found.append((key, document))
    return found


def signal_workspace_ids(*, storage: EnvironmentStorage) -> list[int]:
    """Workspaces with signals in this stage's store (from the object names: no database)."""
    return sorted(int(name) for name in storage.children("signals") if name.isdigit())


def _correlation_key_of(key: str) -> str:
    """The correlation key from an object name `<quoted key>-<32 hex uuid>.json`."""
    return unquote(key.rsplit("/", 1)[-1].removesuffix(".json")[:-33])


@dataclass
class ReportInput:
    pre: list[dict] = field(default_factory=list)
    post: list[dict] = field(default_factory=list)
    late_post: list[dict] = field(default_factory=list)
    earlier_pre_keys: set[str] = field(default_factory=set)


def _stage_keys(storage: EnvironmentStorage, prefix: str, stage: str) -> list[str]:
    return [key for key in storage.list_keys(prefix) if key.split("/")[-2] == stage]


def signals_for_report(
    *,
    storage: EnvironmentStorage,
    workspace_id: int,
    day: date | None,
    on_progress: Callable[[int, int], None] | None = None,
) -> ReportInput:
    """What a report of `day` (or, with None, of every day) merges: see analytics.signals.merge."""
    if day is None:
        everything = f"signals/{workspace_id}/"
        wanted = {
            "pre": _stage_keys(storage, everything, "pre"),
            "post": _stage_keys(storage, everything, "post"),
        }
        earlier: set[str] = set()
    else:
        prefix = signals_day_prefix(workspace_id=workspace_id, day=day)
        next_day = signals_day_prefix(workspace_id=workspace_id, day=day + timedelta(days=1))
        previous_day = signals_day_prefix(workspace_id=workspace_id, day=day - timedelta(days=1))
        wanted = {
            "pre": _stage_keys(storage, prefix, "pre"),
            "post": _stage_keys(storage, prefix, "post"),
            "late_post": _stage_keys(storage, next_day, "post"),
        }
        earlier = {_correlation_key_of(key) for key in _stage_keys(storage, previous_day, "pre")}
    result = ReportInput(earlier_pre_keys=earlier)
    total = sum(len(keys) for keys in wanted.values())
    done = 0
    for name, keys in wanted.items():
        records = getattr(result, name)
        for key in keys:
            records.append(orjson.loads(storage.get(key)))
            done += 1
            if on_progress is not None and (done % 500 == 0 or done == total):
                on_progress(done, total)
    if on_progress is not None and total == 0:
        on_progress(0, 0)
    return result


def report_get(*, storage: EnvironmentStorage, workspace_id: int, label: str, name: str) -> bytes | None:
    """A written report file (summary.json or report.html) of a workspace, or None."""
    if name not in REPORT_FILES:
        return None
    try:
        return storage.get(report_prefix(workspace_id=workspace_id, label=label) + name)
    except KeyError:
        return None


def report_labels(*, storage: EnvironmentStorage, workspace_id: int) -> list[str]:
    """The workspace's written reports: `all` (every day merged) first, then days newest first."""
    labels = storage.children(f"reports/{workspace_id}")
    days = sorted((label for label in labels if label != "all"), reverse=True)
    return (["all"] if "all" in labels else []) + days
