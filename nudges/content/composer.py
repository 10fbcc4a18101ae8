"""What a nudge says: the template for its audience, the variant (bandit or cold-start rule), the
draft with feature variables, and the final message with the recipient's own details.

The LLM (nudges.llm.personalize) works on the draft, in which contact variables and the unsubscribe
link are still placeholders; `message_for` fills them last, for the one recipient.
"""

import html
import re
import threading
from dataclasses import dataclass

from cachetools import TTLCache
from django.db.models import Prefetch

from guardrails.preferences.unsubscribe import list_unsubscribe_headers, unsubscribe_url
from nudges.content import bandit, choosers, links, rendering
from nudges.delivery import tracking
from nudges.gateways.base import Message, Recipient
from nudges.llm.personalize import Draft
from nudges.models import Nudge, NudgeSettings, NudgeTemplate, TemplateVersion, Trigger
from tenancy.models import EndUser, Workspace

# Filled only in the final message: the recipient's contact details and their unsubscribe link.
LATE_VARIABLES = rendering.KEEP_CONTACT | {"unsubscribe_url"}
# New users' first events get the rule-based choice only (the seeds' cold start).
COLD_START_EVENTS = 3
DEFAULT_UI_COMPONENT = {"in_app": "tooltip", "email": "email"}
# Templates and their active versions, per (trigger, channel), read once per process per
# TEMPLATE_CACHE_SECONDS: a version activated in the admin is sent within that time, and the
# bandit's counts it samples are at most that old.
TEMPLATE_CACHE_SECONDS = 5
_audiences: TTLCache = TTLCache(maxsize=4096, ttl=TEMPLATE_CACHE_SECONDS)
_audiences_lock = threading.Lock()


def forget() -> None:
    """Drop the cached templates (tests; a worker picks up changes by itself within seconds)."""
    with _audiences_lock:
        _audiences.clear()


def _templates(trigger: Trigger, channel: str) -> list[NudgeTemplate]:
    """The trigger's templates on the channel that have an active version, each with its
    `active_versions` (by variant)."""
    key = (trigger.pk, channel)
    with _audiences_lock:
        found = _audiences.get(key)
    if found is None:
        active = TemplateVersion.objects.filter(status=TemplateVersion.Status.ACTIVE).order_by(
            "variant", "pk"
        )
        templates = NudgeTemplate.objects.filter(trigger=trigger, channel=channel).prefetch_related(
            Prefetch("versions", queryset=active, to_attr="active_versions")
        )
        found = [template for template in templates if template.active_versions]
        with _audiences_lock:
            _audiences[key] = found
    return found


@dataclass(frozen=True)
class VersionChoice:
    version: TemplateVersion
    explanation: str


def _locale_rank(template_locale: str, user_locale: str) -> int | None:
    """0: exact, 1: same language, 2: any-locale template; None: another locale."""
    if not template_locale:
        return 2
    wanted, offered = user_locale.lower().replace("_", "-"), template_locale.lower().replace("_", "-")
    if wanted == offered:
        return 0
    if wanted.split("-")[0] == offered.split("-")[0]:
        return 1
    return None


def template_for(*, trigger: Trigger, channel: str, end_user: EndUser) -> NudgeTemplate | None:
    """The template that fits the user best: their persona before any persona, their locale
    (then language) before any locale. Only templates with an active version count."""
    best, best_rank = None, None
    for template in _templates(trigger, channel):
        if template.persona and template.persona.lower() != (end_user.persona or "").lower():
            continue
        locale_rank = _locale_rank(template.locale, end_user.locale or "")
        if locale_rank is None:
            continue
        rank = (0 if template.persona else 1, locale_rank, template.pk)
        if best_rank is None or rank < best_rank:
            best, best_rank = template, rank
    return best


def choose_version(
    *, template: NudgeTemplate, cold_start: bool, end_user: EndUser | None = None
) -> VersionChoice | None:
    """For a known end user the registered choosers decide first (nudges.content.choosers: an
    experiment on the template), then the cold-start rule, then the bandit; a chooser's failure
    is named before the explanation of the choice made without it."""
    failures: list[str] = []
    if end_user is not None:
        picked, failures = choosers.pick(template=template, end_user=end_user)
        if picked is not None:
            return VersionChoice(picked.version, picked.reason)
    choice = _rule_or_bandit(template=template, cold_start=cold_start)
    if choice is not None and failures:
        return VersionChoice(choice.version, f"{'; '.join(failures)}; {choice.explanation}")
    return choice


def _rule_or_bandit(*, template: NudgeTemplate, cold_start: bool) -> VersionChoice | None:
    versions = getattr(template, "active_versions", None)
    if versions is None:
        versions = list(
            template.versions.filter(status=TemplateVersion.Status.ACTIVE).order_by("variant", "pk")
        )
    if not versions:
        return None
    if cold_start or len(versions) == 1:
        why = "cold start (fewer than 3 events): rule-based" if cold_start else "the only active variant"
        return VersionChoice(versions[0], f"variant {versions[0].variant}: {why}")
    arms = [bandit.Arm(version.pk, version.variant, version.sends, version.rewards) for version in versions]
    choice = bandit.choose(arms, template_id=template.pk)
    chosen = next(version for version in versions if version.pk == choice.arm.version_id)
    return VersionChoice(chosen, choice.explanation())


def draft_for(*, version: TemplateVersion, variables: dict, channel: str) -> Draft:
    """The version with the feature variables filled. A call to action whose link renders empty
    (`{{ step_link }}` of a step without a deep link) is dropped whole: no button to nowhere."""
    keep = frozenset(LATE_VARIABLES)
    cta_url = rendering.render(version.cta_url, variables, keep=keep).strip()
    return Draft(
        subject=rendering.render(version.subject, variables, keep=keep),
        body=rendering.render(version.body, variables, keep=keep),
        cta_text=rendering.render(version.cta_text, variables, keep=keep) if cta_url else "",
        cta_url=cta_url,
        ui_component=DEFAULT_UI_COMPONENT.get(channel, ""),
    )


def _workspace(nudge: Nudge) -> Workspace:
    """The nudge's workspace, through its trigger when the pipeline loaded that with it."""
    if Nudge.trigger.is_cached(nudge) and nudge.trigger is not None:
        return nudge.trigger.workspace
    return nudge.workspace


def _paragraphs(text: str) -> str:
    blocks = [block.strip() for block in re.split(r"\n\s*\n", text) if block.strip()]
    return "".join(f"<p>{html.escape(block).replace(chr(10), '<br>')}</p>" for block in blocks)


def message_for(
    *,
    nudge: Nudge,
    channel: str,
    draft: Draft,
    recipient: Recipient,
    nudge_settings: NudgeSettings,
    end_user: EndUser,
    purpose: str,
    status_callback_url: str = "",
) -> Message:
    """The message as the recipient gets it: their details filled in, the call to action through
    the click-tracking link (none at all when its link leads nowhere: nudges.content.links); for email
    the CAN-SPAM footer (postal address, unsubscribe link), List-Unsubscribe headers and the open
    pixel; for SMS the opt-out text."""
    late = rendering.contact_values(
        first_name=recipient.first_name, last_name=recipient.last_name, name=recipient.name
    )
    headers: dict[str, str] = {}
    if channel == "email":
        late["unsubscribe_url"] = unsubscribe_url(end_user=end_user, channel=channel, purpose=purpose)
        headers = list_unsubscribe_headers(end_user=end_user, channel=channel, purpose=purpose)
    subject = rendering.render(draft.subject, late)
    body = rendering.render(draft.body, late)
    destination = links.call_to_action_destination(workspace=_workspace(nudge), link=draft.cta_url)
    click = tracking.click_url(nudge_id=nudge.pk) if destination else ""
    cta_text = rendering.render(draft.cta_text, late) if click else ""
    html_part = ""
    if channel == "email":
        footer = f"{nudge_settings.postal_address}\nUnsubscribe: {late['unsubscribe_url']}"
        text = f"{body}\n\n{cta_text}: {click}" if click else body
        pixel = html.escape(tracking.open_pixel_url(nudge_id=nudge.pk))
        html_part = (
            _paragraphs(body)
            + (f'<p><a href="{html.escape(click)}">{html.escape(cta_text or click)}</a></p>' if click else "")
            + f'<hr><p style="font-size:12px;color:#666">{html.escape(nudge_settings.postal_address)}<br>'
            + f'<a href="{html.escape(late["unsubscribe_url"])}">Unsubscribe</a></p>'
            + f'<img src="{pixel}" width="1" height="1" alt="">'
        )
        body = f"{text}\n\n--\n{footer}"
    elif channel == "sms":
        opt_out = nudge_settings.sms_opt_out_text
        body = f"{body} {click}".strip() if click else body
        if opt_out and opt_out.lower() not in body.lower():
            body = f"{body} {opt_out}"
    return Message(
        nudge_id=nudge.pk,
        workspace_id=nudge.workspace_id,
        idempotency_key=nudge.idempotency_key,
        channel=channel,
        subject=subject,
        body=body,
        cta_text=cta_text,
        cta_url=click,
        ui_component=draft.ui_component,
        html=html_part,
        headers=headers,
        status_callback_url=status_callback_url,
    )
