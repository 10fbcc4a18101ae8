"""The preview of a template version for one end user: the static template with their variables,
the personalised version, and what the policy would decide now (a dry run: nothing recorded,
nothing reserved).

Contact variables ({{ first_name }}) and the unsubscribe link stay placeholders, as in the
pipeline before the gateway: the preview never shows a person's contact data.
"""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.template.response import TemplateResponse

from guardrails.policy import engine as policy
from nudges.content import composer, rendering
from nudges.content.context import NudgeContext, nudge_context
from nudges.llm import personalize
from nudges.models import Nudge, TemplateVersion
from onboarding.models import Enrollment
from onboarding.progress import selectors as progress_selectors
from paths import rules
from tenancy import selectors
from tenancy.models import EndUser

logger = logging.getLogger(__name__)

LLM_NOT_CONFIGURED = "LLM not configured (no OPENAI_API_KEY): the static template is used."


@dataclass(frozen=True)
class Preview:
    end_user: EndUser
    enrollment: Enrollment | None
    variables: list[tuple[str, object, str]]  # name, value, what it is
    static: personalize.Draft
    personalised: personalize.Personalisation | None
    personalisation_note: str
    decision: policy.Decision


def llm_configured() -> bool:
    return bool(getattr(settings, "OPENAI_API_KEY", ""))


def _allowed_links(enrollment: Enrollment | None) -> list[str]:
    """The deep links the LLM may use: the steps of the user's path (as the pipeline gives it)."""
    if enrollment is None:
        return []
    compiled = rules.compiled_version(enrollment.path_version)
    return [step.deep_link for step in compiled.steps if step.deep_link]


def _personalise(
    version: TemplateVersion, end_user: EndUser, enrollment, draft, context: NudgeContext
) -> tuple[personalize.Personalisation | None, str]:
    template = version.template
    unsaved = Nudge(
        workspace=template.workspace,
        end_user=end_user,
        enrollment=enrollment,
        trigger=template.trigger,
        template_version=version,
        channel=template.channel,
        occasion="admin-preview",
        idempotency_key="admin-preview",
    )
    try:
        result = personalize.personalise(
            nudge=unsaved,
            template_version=version,
            draft=draft,
            context=context,
            allowed_links=_allowed_links(enrollment),
            channel=template.channel,
        )
    except Exception as error:  # the contract says it never raises; a preview must not either
        logger.warning("nudges.preview.personalise_failed", extra={"error_type": type(error).__name__})
        return None, f"Personalisation failed ({type(error).__name__}): the static template is used."
    if result.personalised:
        return result, "Personalised by the LLM."
    if not llm_configured():
        return result, LLM_NOT_CONFIGURED
    reason = result.fallback_reason or "no reason given"
    return result, f"Personalisation unavailable ({reason}): the static template is used."


def template_preview(*, version: TemplateVersion, end_user: EndUser) -> Preview:
    template = version.template
    enrollment = progress_selectors.enrollment_get_for_user(
        workspace=template.workspace, user_id=end_user.external_id
    )
    context = nudge_context(workspace=template.workspace, end_user=end_user, enrollment=enrollment)
    draft = composer.draft_for(version=version, variables=context.variables, channel=template.channel)
    personalised, note = _personalise(version, end_user, enrollment, draft, context)
    decision = policy.check(
        policy.NUDGE_SEND,
        end_user,
        {"channel": template.channel, "purpose": template.trigger.purpose},
        dry_run=True,
    )
    variables = [
        (name, context.variables.get(name, ""), meaning)
        for name, meaning in rendering.FEATURE_VARIABLES.items()
        if name in context.variables
    ]
    return Preview(
        end_user=end_user,
        enrollment=enrollment,
        variables=variables,
        static=draft,
        personalised=personalised,
        personalisation_note=note,
        decision=decision,
    )


def preview_view(model_admin, request, object_id):
    """GET ?user=<external id>: the preview for that end user of the template's workspace."""
    version = model_admin.scoped_version(request, object_id)
    workspace = version.template.workspace
    external_id = (request.GET.get("user") or "").strip()
    end_user = selectors.end_user_get(workspace=workspace, external_id=external_id) if external_id else None
    preview = template_preview(version=version, end_user=end_user) if end_user is not None else None
    return TemplateResponse(
        request,
        "admin/nudges/templateversion/preview.html",
        {
            **model_admin.admin_site.each_context(request),
            "opts": model_admin.opts,
            "original": version,
            "version": version,
            "template": version.template,
            "external_id": external_id,
            "not_found": bool(external_id) and end_user is None,
            "preview": preview,
            "contact_variables": rendering.CONTACT_VARIABLES,
            "title": f"Preview: {version.template.name} v{version.number}",
        },
    )
