"""Checks a template version must pass before it is approved (and again when it is activated).

Each check is one function of the rendered template, registered in CHECKS with the channels it
applies to; every applicable check runs and reports (code, passed, message), so the admin lists
every failure at once. A warning passes but is shown.

The template is rendered with sample values in its variables (SAMPLE_VALUES), then composed into
the message the pipeline would send (nudges.content.composer.message_for, for a sample recipient):
what is checked is what is sent. The rules enforced:

* variables: every {{ variable }} is one nudges.content.rendering knows; no malformed {{ ... }} is left.
* content: a body; email needs a subject.
* unsubscribe_link (email): the composed email carries the one-click unsubscribe link. The
  pipeline's footer adds it to every email; {{ unsubscribe_url }} in the body places it there too.
* postal_address (email): the workspace has a postal address (NudgeSettings; missing is a
  failure) and the composed email contains it (the pipeline's footer prints it).
* sms_length (SMS): the composed SMS (body, click-tracking link, opt-out text) fits one segment
  (160 GSM-7 characters, 70 when a character needs UCS-2); more is a warning, more than
  MAX_SMS_SEGMENTS segments a failure.
* sms_opt_out (SMS): the composed SMS contains the workspace's opt-out text (the pipeline appends
  NudgeSettings.sms_opt_out_text when the body lacks it; an empty one is a failure).
* banned_words: none of the workspace's banned words in subject, body or call to action, as
  whole words, case-insensitive.
* links: the call to action's destination and every link in the texts (whatever a mail client
  would make a link of: bare domains, e-mail addresses, IP addresses, disguised links) are
  relative deep links (/path) or http(s) links to the workspace's allowed domains (subdomains
  included); the platform's own links (PUBLIC_BASE_URL: unsubscribe, click tracking) are always
  allowed.
"""

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

from guardrails.models import Channel, Purpose
from nudges.content import composer, link_scan, rendering
from nudges.gateways.base import Message, Recipient
from nudges.llm.personalize import Draft
from nudges.models import Nudge, NudgeSettings, TemplateVersion
from tenancy.models import EndUser, Workspace

MAX_SMS_SEGMENTS = 3
GSM_SINGLE, GSM_PART = 160, 153
UCS2_SINGLE, UCS2_PART = 70, 67
# GSM 03.38 basic set, and the extension table (each of those costs two characters).
GSM_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = frozenset("^{}\\[~]|€\f")

# What the variables hold when a template is checked: realistic lengths, no real person.
SAMPLE_VALUES = {
    "persona": "developer",
    "use_case": "analytics",
    "company_size": "11-50",
    "path_name": "Getting started",
    "step_title": "Connect your first integration",
    "step_link": "/onboarding/connect-integration",
    "percent_complete": 60,
    "steps_left": 3,
    "days_since_signup": 7,
    "first_name": "Alexandra",
    "name": "Alexandra Johnson",
}

_ATTRIBUTE_LINK = re.compile(r"(?i)\b(?:href|src)\s*=\s*[\"']([^\"']*)[\"']")
_LEFTOVER_BRACES = re.compile(r"{{|}}")
_WORDS = re.compile(r"\w+")


@dataclass(frozen=True)
class CheckResult:
    code: str
    passed: bool
    message: str
    warning: bool = False

    def as_dict(self) -> dict:
        return {"code": self.code, "passed": self.passed, "message": self.message, "warning": self.warning}


@dataclass(frozen=True)
class Candidate:
    """What is checked: the texts as written, as rendered with the sample values, and the
    message the pipeline composes from them."""

    channel: str
    written: dict[str, str]
    rendered: dict[str, str]
    composed: Message
    nudge_settings: NudgeSettings


TEXT_FIELDS = ("subject", "body", "cta_text", "cta_url")


def nudge_settings_for(*, workspace: Workspace) -> NudgeSettings:
    """The workspace's nudge settings; the defaults (unsaved) when it has none yet."""
    return NudgeSettings.objects.filter(workspace=workspace).first() or NudgeSettings(workspace=workspace)


def sample_values(*, workspace: Workspace) -> dict[str, object]:
    return {**SAMPLE_VALUES, "workspace_name": workspace.name}


def _composed(
    *,
    workspace: Workspace,
    channel: str,
    purpose: str,
    rendered: dict[str, str],
    nudge_settings: NudgeSettings,
) -> Message:
    """The message the pipeline would send, for a sample recipient (no real person, no row)."""
    end_user = EndUser(pk=0, workspace=workspace, external_id="sample")
    nudge = Nudge(pk=0, workspace=workspace, end_user=end_user, idempotency_key="template-check")
    recipient = Recipient(
        end_user_id=0,
        external_id="sample",
        first_name=SAMPLE_VALUES["first_name"],
        name=SAMPLE_VALUES["name"],
    )
    draft = Draft(
        subject=rendered["subject"],
        body=rendered["body"],
        cta_text=rendered["cta_text"],
        cta_url=rendered["cta_url"],
        ui_component=composer.DEFAULT_UI_COMPONENT.get(channel, ""),
    )
    return composer.message_for(
        nudge=nudge,
        channel=channel,
        draft=draft,
        recipient=recipient,
        nudge_settings=nudge_settings,
        end_user=end_user,
        purpose=purpose if purpose in Purpose.values else Purpose.ONBOARDING,
    )


def _normalised(text: str) -> str:
    return " ".join((text or "").lower().split())


def _words(text: str) -> list[str]:
    return _WORDS.findall((text or "").lower())


def _contains_words(text: str, phrase: str) -> bool:
    wanted, words = _words(phrase), _words(text)
    if not wanted:
        return False
    return any(words[start : start + len(wanted)] == wanted for start in range(len(words) - len(wanted) + 1))


# --- The checks ------------------------------------------------------------------------------


def check_variables(candidate: Candidate) -> CheckResult:
    unknown = rendering.unknown_variables(*candidate.written.values())
    if unknown:
        names = ", ".join(f"{{{{ {name} }}}}" for name in unknown)
        return CheckResult("variables", False, f"unknown variables: {names}")
    malformed = [field for field, text in candidate.rendered.items() if _LEFTOVER_BRACES.search(text)]
    if malformed:
        return CheckResult(
            "variables",
            False,
            f"malformed {{{{ ... }}}} in {', '.join(malformed)}: a variable is written {{{{ name }}}}",
        )
    return CheckResult("variables", True, "every variable is known")


def check_content(candidate: Candidate) -> CheckResult:
    if not candidate.written["body"].strip():
        return CheckResult("content", False, "the body is empty")
    if candidate.channel == Channel.EMAIL and not candidate.written["subject"].strip():
        return CheckResult("content", False, "an email needs a subject")
    return CheckResult("content", True, "subject and body present")


def check_unsubscribe_link(candidate: Candidate) -> CheckResult:
    unsubscribe = candidate.composed.headers.get("List-Unsubscribe", "").strip("<>")
    if unsubscribe and unsubscribe in candidate.composed.body:
        return CheckResult("unsubscribe_link", True, "the email carries the one-click unsubscribe link")
    return CheckResult(
        "unsubscribe_link",
        False,
        "the email must carry the one-click unsubscribe link: put {{ unsubscribe_url }} in the body",
    )


def check_postal_address(candidate: Candidate) -> CheckResult:
    address = candidate.nudge_settings.postal_address.strip()
    if not address:
        return CheckResult(
            "postal_address",
            False,
            "the workspace has no postal address in its nudge settings: every email must carry one"
            " (CAN-SPAM)",
        )
    if _contains_words(candidate.composed.body, address):
        return CheckResult("postal_address", True, "the email carries the workspace's postal address")
    return CheckResult(
        "postal_address",
        False,
        f"the email must carry the workspace's postal address ({' '.join(address.split())})",
    )


def sms_segments(text: str) -> tuple[int, str, int]:
    """(segments, encoding, length in that encoding's characters) of an SMS."""
    if all(character in GSM_BASIC or character in GSM_EXTENSION for character in text):
        length = sum(2 if character in GSM_EXTENSION else 1 for character in text)
        single, part, encoding = GSM_SINGLE, GSM_PART, "GSM-7"
    else:
        length = len(text.encode("utf-16-le")) // 2
        single, part, encoding = UCS2_SINGLE, UCS2_PART, "UCS-2"
    segments = 1 if length <= single else math.ceil(length / part)
    return segments, encoding, length


def check_sms_length(candidate: Candidate) -> CheckResult:
    segments, encoding, length = sms_segments(candidate.composed.body)
    single = GSM_SINGLE if encoding == "GSM-7" else UCS2_SINGLE
    measured = f"{length} {encoding} characters as sent (with the tracked link and the opt-out text)"
    if segments > MAX_SMS_SEGMENTS:
        return CheckResult(
            "sms_length",
            False,
            f"{measured}: {segments} segments, more than the {MAX_SMS_SEGMENTS} allowed",
        )
    if segments > 1:
        return CheckResult(
            "sms_length",
            True,
            f"{measured}: {segments} segments (one holds {single}); each segment is billed",
            warning=True,
        )
    return CheckResult("sms_length", True, f"{measured}: one segment")


def check_sms_opt_out(candidate: Candidate) -> CheckResult:
    opt_out = candidate.nudge_settings.sms_opt_out_text.strip()
    if not opt_out:
        return CheckResult(
            "sms_opt_out", False, "the workspace has no SMS opt-out text in its nudge settings"
        )
    if _normalised(opt_out) in _normalised(candidate.composed.body):
        return CheckResult("sms_opt_out", True, "the SMS carries the opt-out text")
    return CheckResult("sms_opt_out", False, f"the SMS must carry the opt-out text “{opt_out}”")


def check_banned_words(candidate: Candidate) -> CheckResult:
    texts = " \n".join(candidate.rendered[field] for field in ("subject", "body", "cta_text"))
    found = []
    for word in candidate.nudge_settings.banned_words or []:
        word = str(word).strip()
        if word and re.search(rf"(?<!\w){re.escape(word)}(?!\w)", texts, re.IGNORECASE):
            found.append(word)
    if found:
        return CheckResult("banned_words", False, f"banned words: {', '.join(found)}")
    return CheckResult("banned_words", True, "no banned word")


def _allowed_domains(candidate: Candidate) -> list[str]:
    domains = [
        str(domain).strip().lower().removeprefix("*.").strip(".")
        for domain in candidate.nudge_settings.allowed_link_domains or []
    ]
    return [domain for domain in domains if domain]


def link_problem(link: str, domains: list[str]) -> str | None:
    """Why `link` may not be sent (None: it may): relative deep links and the allowed domains."""
    link = link.strip()
    if link.startswith("/") and not link.startswith("//"):
        return None
    parts = urlsplit(link if "://" in link or ":" in link.split("/")[0] else f"https://{link}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return f"{link} is neither a relative deep link (/...) nor an http(s) link"
    host = parts.hostname.lower()
    own = urlsplit(settings.PUBLIC_BASE_URL).hostname
    if host == own or link_scan.host_allowed(host, domains):
        return None
    return f"{link} points to {host}, not an allowed domain"


def links_in(text: str) -> list[str]:
    """What a mail client would link in `text` (bare domains and disguised links included:
    nudges.content.link_scan), then the targets of href and src attributes."""
    found = [link.text for link in link_scan.links_in(text or "")]
    found += [match.group(1) for match in _ATTRIBUTE_LINK.finditer(text or "") if match.group(1)]
    return list(dict.fromkeys(found))


def check_links(candidate: Candidate) -> CheckResult:
    domains = _allowed_domains(candidate)
    links = [candidate.rendered["cta_url"]] if candidate.rendered["cta_url"].strip() else []
    for field in ("subject", "body", "cta_text"):
        links += links_in(candidate.rendered[field])
    problems = [problem for link in dict.fromkeys(links) if (problem := link_problem(link, domains))]
    if problems:
        allowed = ", ".join(domains) or "none set in the nudge settings"
        return CheckResult("links", False, f"{'; '.join(problems)} (allowed domains: {allowed})")
    return CheckResult("links", True, "every link is a deep link or on an allowed domain")


@dataclass(frozen=True)
class Check:
    code: str
    run: Callable[[Candidate], CheckResult]
    channels: tuple[str, ...] | None = None  # None: every channel


# The registry, in the order the results are shown.
CHECKS: tuple[Check, ...] = (
    Check("variables", check_variables),
    Check("content", check_content),
    Check("unsubscribe_link", check_unsubscribe_link, (Channel.EMAIL,)),
    Check("postal_address", check_postal_address, (Channel.EMAIL,)),
    Check("sms_length", check_sms_length, (Channel.SMS,)),
    Check("sms_opt_out", check_sms_opt_out, (Channel.SMS,)),
    Check("banned_words", check_banned_words),
    Check("links", check_links),
)


def run_checks(
    *,
    workspace: Workspace,
    channel: str,
    subject: str,
    body: str,
    cta_text: str,
    cta_url: str,
    purpose: str = Purpose.ONBOARDING,
    nudge_settings: NudgeSettings | None = None,
) -> list[CheckResult]:
    """Every check that applies to the channel, in CHECKS order."""
    nudge_settings = nudge_settings or nudge_settings_for(workspace=workspace)
    texts = {"subject": subject, "body": body, "cta_text": cta_text, "cta_url": cta_url}
    written = {field: texts[field] or "" for field in TEXT_FIELDS}
    values = sample_values(workspace=workspace)
    # As the pipeline renders: the unsubscribe link and contact details are filled last.
    late = frozenset(composer.LATE_VARIABLES)
    drafted = {field: rendering.render(text, values, keep=late) for field, text in written.items()}
    composed = _composed(
        workspace=workspace, channel=channel, purpose=purpose, rendered=drafted, nudge_settings=nudge_settings
    )
    rendered = {field: rendering.render(text, values) for field, text in written.items()}
    candidate = Candidate(
        channel=channel, written=written, rendered=rendered, composed=composed, nudge_settings=nudge_settings
    )
    return [check.run(candidate) for check in CHECKS if check.channels is None or channel in check.channels]


def version_checks(*, version: TemplateVersion) -> list[CheckResult]:
    template = version.template
    return run_checks(
        workspace=template.workspace,
        channel=template.channel,
        subject=version.subject,
        body=version.body,
        cta_text=version.cta_text,
        cta_url=version.cta_url,
        purpose=template.trigger.purpose,
    )


def failures(results: list[CheckResult]) -> list[CheckResult]:
    return [result for result in results if not result.passed]
