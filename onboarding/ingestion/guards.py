"""Checks the apps above onboarding plug into ingestion: who may send events, which may be kept.

onboarding asks; guardrails answers (its rate limit, its erasure guard), registered in
GuardrailsConfig.ready(). Both lists are run in registration order, inside the request (an
admission check) or the storing transaction (an event filter).
"""

from collections.abc import Callable
from typing import Protocol

from rest_framework.request import Request


class AdmissionCheck(Protocol):
    def __call__(self, *, request: Request, call_type: str | None) -> None:
        """Raise an APIException (e.g. 429 with Retry-After) to refuse the request; nothing is stored."""


class EventFilter(Protocol):
    def __call__(self, *, workspace_id: int, events: list[dict]) -> list[dict]:
        """The normalised events that may be stored (the same list when all may)."""


_admission_checks: list[AdmissionCheck] = []
_event_filters: list[EventFilter] = []


def _register(registry: list, check: Callable) -> None:
    if check not in registry:  # ready() may run twice in tests: register once
        registry.append(check)


def admission_check_register(check: AdmissionCheck) -> None:
    _register(_admission_checks, check)


def event_filter_register(event_filter: EventFilter) -> None:
    _register(_event_filters, event_filter)


def request_admit(*, request: Request, call_type: str | None) -> None:
    """Run every admission check; the first to refuse raises."""
    for check in _admission_checks:
        check(request=request, call_type=call_type)


def events_to_store(*, workspace_id: int, events: list[dict]) -> list[dict]:
    """The events every filter keeps."""
    for event_filter in _event_filters:
        if not events:
            break
        events = event_filter(workspace_id=workspace_id, events=events)
    return events
