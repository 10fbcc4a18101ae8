"""Deciders the planner asks before its rules: experiments first, then the model (issue order).

Higher apps register one at start (AppConfig.ready), so paths never imports them. A decider:

* `prepare(workspace_id=, end_user_ids=)`: what it reads once per batch (running experiments,
  the users' stored assignments); the planner passes it back to `decide`.
* `decide(end_user=, published=, prepared=)`: a `Choice`, or None to let the next one decide.
* `record(chosen=)`: writes what its choices need (assignments) for the enrollments just
  inserted, `[(enrollment, choice.record)]`, inside the enrollment's transaction.

A decider that raises is skipped: the planner logs it and the rules decide, saying so.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from paths.models import PathVersion
from tenancy.models import EndUser


@dataclass(frozen=True, slots=True)
class Choice:
    path_version: PathVersion
    reason: str
    record: Any = None  # opaque to paths; handed back to the decider's record()
    source: str = ""  # the decision's source when not the decider's own (the model decider's "rules")


class Decider(Protocol):
    source: str  # "experiment", "model": the decision's source

    def prepare(self, *, workspace_id: int, end_user_ids: Sequence[int]) -> Any: ...

    def decide(self, *, end_user: EndUser, published: list[PathVersion], prepared: Any) -> Choice | None: ...

    def record(self, *, chosen: list[tuple[Any, Any]]) -> None: ...


_DECIDERS: list[tuple[int, Decider]] = []


def decider_register(decider: Decider, *, order: int) -> None:
    """Register once per source; lower order decides first (experiment 10, model 20)."""
    _DECIDERS[:] = [(rank, known) for rank, known in _DECIDERS if known.source != decider.source]
    _DECIDERS.append((order, decider))
    _DECIDERS.sort(key=lambda item: item[0])


def decider_unregister(source: str) -> None:
    _DECIDERS[:] = [(rank, known) for rank, known in _DECIDERS if known.source != source]


def deciders() -> list[Decider]:
    return [decider for _, decider in _DECIDERS]


def decider_of(source: str) -> Decider | None:
    return next((decider for decider in deciders() if decider.source == source), None)
