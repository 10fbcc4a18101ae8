"""What a nudge may say about its user: features, progress and recent events, never contact data.

The context feeds the static template's variables and, once redacted (guardrails.pii.detector), the LLM
prompt. It is built from the user's feature columns, their enrollment's state and their last
events; Contact is never read here.
"""

from dataclasses import dataclass, field
from typing import Any

from django.utils import timezone

from nudges.models import Nudge
from onboarding.models import Enrollment, Event
from onboarding.progress import selectors as progress_selectors
from tenancy.models import EndUser, Workspace

RECENT_EVENTS = 10


@dataclass(frozen=True)
class NudgeContext:
    """The facts about one user at one moment; `variables` fill the templates."""

    features: dict[str, Any]
    progress: dict[str, Any] | None
    recent_events: list[dict[str, Any]]
    target_step: dict[str, Any] | None
    event_count: int  # the user's events, counted up to RECENT_EVENTS (enough for the cold start)
    variables: dict[str, Any] = field(default_factory=dict)

    def for_llm(self) -> dict[str, Any]:
        """The part of the context the LLM sees (before redaction): no ids, no contact data."""
        return {
            "user": self.features,
            "progress": self.progress,
            "target_step": self.target_step,
            "recent_events": self.recent_events,
        }


def _features(end_user: EndUser) -> dict[str, Any]:
    features = {
        name: getattr(end_user, name)
        for name in ("persona", "signup_source", "company_size", "use_case", "locale", "timezone")
        if getattr(end_user, name)
    }
    # Other traits are features too (contact traits never reach EndUser.traits).
    extra = {key: value for key, value in (end_user.traits or {}).items() if key not in features}
    if extra:
        features["traits"] = extra
    return features


def _progress(state: dict[str, Any] | None) -> dict[str, Any] | None:
    if state is None:
        return None
    return {
        "path": state["path"]["name"],
        "status": state["status"],
        "percent_complete": state["percent_complete"],
        "current_step": state["current_step"],
        "steps": [
            {key: step[key] for key in ("key", "title", "status", "optional")} for step in state["steps"]
        ],
    }


def _target_step(state: dict[str, Any] | None, step_key: str) -> dict[str, Any] | None:
    if state is None:
        return None
    key = step_key or state["current_step"]
    for step in state["steps"]:
        if step["key"] == key:
            return {
                "key": step["key"],
                "title": step["title"],
                "body": step["body"],
                "deep_link": step["deep_link"],
                "status": step["status"],
            }
    return None


def nudge_context(
    *, workspace: Workspace, end_user: EndUser, enrollment: Enrollment | None, target_step_key: str = ""
) -> NudgeContext:
    state = progress_selectors.enrollment_state(enrollment=enrollment) if enrollment is not None else None
    events = list(
        Event.objects.filter(workspace=workspace, end_user=end_user)
        .order_by("-timestamp", "-pk")
        .values("type", "name", "timestamp", "properties")[:RECENT_EVENTS]
    )
    recent = [
        {
            "type": event["type"],
            "name": event["name"],
            "at": event["timestamp"].isoformat(),
            "properties": event["properties"] if event["type"] != Event.Type.IDENTIFY else {},
        }
        for event in events
    ]
    target = _target_step(state, target_step_key)
    steps_left = 0
    if state is not None:
        steps_left = sum(
            1 for step in state["steps"] if not step["optional"] and step["status"] != "completed"
        )
    variables = {
        "persona": end_user.persona,
        "use_case": end_user.use_case,
        "company_size": end_user.company_size,
        "path_name": state["path"]["name"] if state else "",
        "step_title": target["title"] if target else "",
        "step_link": target["deep_link"] if target else "",
        "percent_complete": state["percent_complete"] if state else 0,
        "steps_left": steps_left,
        "days_since_signup": (timezone.now() - enrollment.enrolled_at).days if enrollment else 0,
        "workspace_name": workspace.name,
    }
    return NudgeContext(
        features=_features(end_user),
        progress=_progress(state),
        recent_events=recent,
        target_step=target,
        event_count=len(events),
        variables=variables,
    )


def context_for_nudge(nudge: Nudge) -> NudgeContext:
    return nudge_context(
        workspace=nudge.trigger.workspace,
        end_user=nudge.end_user,
        enrollment=nudge.enrollment,
        target_step_key=nudge.target_step_key,
    )
