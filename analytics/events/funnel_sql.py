"""One event funnel as one SQL statement that runs on PostgreSQL and SQLite alike.

Each step's events come from onboarding's selector as a subquery (workspace, name, time range:
event_funnel_idx serves it). Per end user, chained CTEs carry the first step's time `t1` and the
time `tk` the user reached step k; step k+1 is the first matching event after `tk` and no later
than `t1 + window`. The database returns one row per (breakdown bucket, step): the users who
reached it and the nearest-rank median and p90 of the seconds since the step before. No event is
loaded into Python.

The SQL is assembled from constant fragments, CTE names and subqueries compiled by the ORM; every
value travels as a parameter (hence the S608 waivers).
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from analytics.events.raw import epoch_seconds
from onboarding.ingestion import selectors as event_selectors
from tenancy import selectors as tenancy_selectors
from tenancy.models import Workspace

ALL = "__all__"
OTHER = "__other__"
BREAKDOWN_LIMIT = 10


@dataclass(frozen=True)
class FunnelStep:
    event: str
    where: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class FunnelQuery:
    workspace: Workspace
    steps: tuple[FunnelStep, ...]
    window_seconds: int
    order: str  # "ordered", "strict" or "any"
    start: datetime  # first step's time from here (inclusive)...
    end: datetime  # ...to here (exclusive: the day after `to`)
    segment: dict[str, str] = field(default_factory=dict)
    breakdown: str | None = None


class _Statement:
    """CTEs and their parameters, kept in the order they appear in the text."""

    def __init__(self) -> None:
        self.ctes: list[str] = []
        self.params: list[Any] = []

    def cte(self, name: str, sql: str, params: tuple | list = ()) -> None:
        self.ctes.append(f"{name} AS ({sql})")
        self.params.extend(params)

    def build(self, final_sql: str) -> tuple[str, list[Any]]:
        return "WITH " + ",\n".join(self.ctes) + "\n" + final_sql, self.params


def _events_cte(statement: _Statement, name: str, queryset) -> None:
    sql, params = queryset.query.sql_with_params()
    epoch = epoch_seconds('q."timestamp"')
    statement.cte(name, f"SELECT q.end_user_id, {epoch} AS epoch FROM ({sql}) q", params)  # noqa: S608


def _step_events(statement: _Statement, query: FunnelQuery) -> None:
    """e1..eN: each step's matching events. The first step's end at `to` unless in any order;
    the later ones may fall up to one window after it."""
    late_end = query.end + timedelta(seconds=query.window_seconds)
    for number, step in enumerate(query.steps, start=1):
        end = query.end if number == 1 and query.order != "any" else late_end
        events = event_selectors.events_matching(
            workspace=query.workspace, name=step.event, where=step.where, start=query.start, end=end
        )
        _events_cte(statement, f"e{number}", events)
    if query.order == "strict":
        names = sorted({step.event for step in query.steps})
        events = event_selectors.events_named(
            workspace=query.workspace, names=names, start=query.start, end=late_end
        )
        _events_cte(statement, "funnel_events", events)


def _first_step(statement: _Statement, query: FunnelQuery) -> None:
    """s1 (end_user_id, bucket, t1, tk): each user's first first-step event in range (in any
    order: first event of any step), with the user's breakdown bucket."""
    if query.order == "any":
        every_step = " UNION ALL ".join(
            f"SELECT end_user_id, epoch FROM e{n}"  # noqa: S608
            for n in range(1, len(query.steps) + 1)
        )
        statement.cte(
            "first_times",
            f"SELECT end_user_id, MIN(epoch) AS t1 FROM ({every_step}) a "  # noqa: S608
            "WHERE epoch < %s GROUP BY end_user_id",
            [query.end.timestamp()],
        )
    else:
        statement.cte("first_times", "SELECT end_user_id, MIN(epoch) AS t1 FROM e1 GROUP BY end_user_id")
    users_sql, users_params = tenancy_selectors.end_users_in_segment(
        workspace=query.workspace, segment=query.segment
    ).query.sql_with_params()
    value = f"u.{query.breakdown}" if query.breakdown else "''"
    statement.cte(
        "base",
        f"SELECT f.end_user_id, f.t1, {value} AS value FROM first_times f "  # noqa: S608
        f"JOIN ({users_sql}) u ON u.id = f.end_user_id",
        users_params,
    )
    if query.breakdown is None:
        statement.cte("s1", f"SELECT end_user_id, '{ALL}' AS bucket, t1, t1 AS tk FROM base")  # noqa: S608
        return
    statement.cte(
        "top_values",
        f"SELECT value FROM base GROUP BY value ORDER BY COUNT(*) DESC, value LIMIT {BREAKDOWN_LIMIT}",  # noqa: S608
    )
    statement.cte(
        "s1",
        "SELECT end_user_id, CASE WHEN value IN (SELECT value FROM top_values) THEN value "  # noqa: S608
        f"ELSE '{OTHER}' END AS bucket, t1, t1 AS tk FROM base",
    )


def _ordered_step(statement: _Statement, number: int, window: float) -> None:
    statement.cte(
        f"s{number}",
        f"SELECT p.end_user_id, p.bucket, p.t1, MIN(e.epoch) AS tk, p.tk AS tprev FROM s{number - 1} p "  # noqa: S608
        f"JOIN e{number} e ON e.end_user_id = p.end_user_id AND e.epoch > p.tk AND e.epoch <= p.t1 + %s "
        "GROUP BY p.end_user_id, p.bucket, p.t1, p.tk",
        [window],
    )


def _strict_step(statement: _Statement, number: int, window: float) -> None:
    """The user's next funnel event after step k-1 must be one of step k's matching events."""
    statement.cte(
        f"n{number}",
        "SELECT p.end_user_id, p.bucket, p.t1, p.tk AS tprev, MIN(f.epoch) AS next_epoch "  # noqa: S608
        f"FROM s{number - 1} p JOIN funnel_events f ON f.end_user_id = p.end_user_id AND f.epoch > p.tk "
        "GROUP BY p.end_user_id, p.bucket, p.t1, p.tk",
    )
    statement.cte(
        f"s{number}",
        f"SELECT n.end_user_id, n.bucket, n.t1, n.next_epoch AS tk, n.tprev FROM n{number} n "  # noqa: S608
        "WHERE n.next_epoch <= n.t1 + %s AND EXISTS (SELECT 1 FROM "
        f"e{number} e WHERE e.end_user_id = n.end_user_id AND e.epoch = n.next_epoch)",
        [window],
    )


def _reached_in_sequence(statement: _Statement, query: FunnelQuery) -> None:
    """reached (end_user_id, bucket, step, t, tprev) for the ordered and strict modes."""
    window = float(query.window_seconds)
    add_step = _strict_step if query.order == "strict" else _ordered_step
    for number in range(2, len(query.steps) + 1):
        add_step(statement, number, window)
    parts = ["SELECT end_user_id, bucket, 1 AS step, tk AS t, NULL AS tprev FROM s1"]
    parts += [
        f"SELECT end_user_id, bucket, {number}, tk, tprev FROM s{number}"  # noqa: S608
        for number in range(2, len(query.steps) + 1)
    ]
    statement.cte("reached", " UNION ALL ".join(parts))


def _reached_in_any_order(statement: _Statement, query: FunnelQuery) -> None:
    """reached for the any-order mode: row k is the user's k-th distinct step done within the
    window after their first one, whichever step it was."""
    firsts = [
        f"SELECT p.end_user_id, p.bucket, {number} AS listed, MIN(e.epoch) AS t FROM s1 p "  # noqa: S608
        f"JOIN e{number} e ON e.end_user_id = p.end_user_id AND e.epoch >= p.t1 AND e.epoch <= p.t1 + %s "
        "GROUP BY p.end_user_id, p.bucket"
        for number in range(1, len(query.steps) + 1)
    ]
    statement.cte("firsts", " UNION ALL ".join(firsts), [float(query.window_seconds)] * len(query.steps))
    order = "PARTITION BY end_user_id ORDER BY t, listed"
    statement.cte(
        "reached",
        f"SELECT end_user_id, bucket, ROW_NUMBER() OVER ({order}) AS step, t, "  # noqa: S608
        f"LAG(t) OVER ({order}) AS tprev FROM firsts",
    )


def funnel_statement(query: FunnelQuery) -> tuple[str, list[Any]]:
    """SQL returning rows (bucket, step, users, median_seconds, p90_seconds)."""
    statement = _Statement()
    _step_events(statement, query)
    _first_step(statement, query)
    if query.order == "any":
        _reached_in_any_order(statement, query)
    else:
        _reached_in_sequence(statement, query)
    durations = "SELECT bucket, step, t - tprev AS seconds FROM reached"
    if query.breakdown is not None:
        durations += f" UNION ALL SELECT '{ALL}', step, t - tprev FROM reached"  # noqa: S608
    statement.cte("durations", durations)
    partition = "PARTITION BY bucket, step"
    statement.cte(
        "ranked",
        f"SELECT bucket, step, seconds, ROW_NUMBER() OVER ({partition} ORDER BY seconds) AS position, "  # noqa: S608
        f"COUNT(*) OVER ({partition}) AS users FROM durations",
    )
    return statement.build(
        "SELECT bucket, step, MAX(users), "
        "MIN(CASE WHEN position >= 0.5 * users THEN seconds END), "
        "MIN(CASE WHEN position >= 0.9 * users THEN seconds END) "
        "FROM ranked GROUP BY bucket, step ORDER BY bucket, step"
    )
