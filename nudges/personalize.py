"""LLM personalisation of a nudge, behind the guardrails; the static template on any failure.

CONTRACT (the pipeline calls `personalise` and nothing else here):

    result = personalise(nudge=nudge, template_version=version, draft=draft, context=context,
                         allowed_links=links, channel="email")

`draft` is the static template rendered with the feature variables (contact variables such as
{{ first_name }} are still in it). The result holds what to send: the LLM's subject, body, call to
action, ui_component and deep link when everything passed, else `draft` itself with the reason it
fell back. It never raises: a failure is a fallback.
"""

from dataclasses import dataclass

from nudges.context import NudgeContext
from nudges.models import Nudge, TemplateVersion

# The UI components an LLM may choose (the seeds' allowlist).
UI_COMPONENTS = ("tooltip", "modal", "sidebar_hint", "email", "none")


@dataclass(frozen=True)
class Draft:
    subject: str
    body: str
    cta_text: str
    cta_url: str  # a deep link (from the path's steps) or a URL
    ui_component: str = ""


@dataclass(frozen=True)
class Personalisation:
    draft: Draft  # what to send
    personalised: bool
    fallback_reason: str = ""  # why the static template was used ("" when personalised)
    llm_call_id: int | None = None


def personalise(
    *,
    nudge: Nudge,
    template_version: TemplateVersion,
    draft: Draft,
    context: NudgeContext,
    allowed_links: list[str],
    channel: str,
) -> Personalisation:
    """Not built yet: the static template, always."""
    return Personalisation(draft=draft, personalised=False, fallback_reason="personalisation not built")
