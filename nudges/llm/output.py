"""What an LLM may answer for a nudge, and the checks its answer passes before anyone sees it.

The answer is a JSON object (`response_schema`, sent as the request's strict JSON schema). The
schema is a request, not a guarantee: `validate` checks everything again here, from the text the
model returned, and raises `Rejected` with a stable code on the first failure, so the caller
falls back to the static template and records why.

Compliance text of the draft (the postal address, the SMS opt-out, the unsubscribe line) is never
the LLM's to rewrite: `split_protected` takes it out of what the model sees and `validate` puts it
back, verbatim, under the model's body.
"""

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from guardrails.pii import detector as pii
from nudges.content import link_scan
from nudges.content.rendering import CONTACT_VARIABLES, VARIABLE, unknown_variables, variables_in

# The UI components an LLM may choose (the seeds' allowlist), and those that mean something on
# each channel: a modal in an SMS is not a choice, it is a mistake.
UI_COMPONENTS = ("tooltip", "modal", "sidebar_hint", "email", "none")
CHANNEL_COMPONENTS = {
    "in_app": ("tooltip", "modal", "sidebar_hint"),
    "email": ("email",),
    "sms": ("none",),
    "push": ("none",),
    "intercom": ("none",),
}

SCHEMA_NAME = "onboarding_nudge"

# Why an answer is rejected: stable codes, recorded as the fallback reason's first part.
INVALID_JSON = "invalid_json"
SCHEMA_INVALID = "schema_invalid"
COMPONENT_NOT_ALLOWED = "component_not_allowed"
LINK_NOT_ALLOWED = "link_not_allowed"
TOO_LONG = "too_long"
UNKNOWN_VARIABLE = "unknown_variable"
REDACTION_PLACEHOLDER = "redaction_placeholder"
BANNED_WORD = "banned_word"
PII_IN_OUTPUT = "pii_in_output"

FIELDS = ("subject", "body", "cta_text")  # the texts the model writes


@dataclass(frozen=True)
class Limits:
    """Most characters per field; a subject of 0 means the channel has none (SMS)."""

    subject: int
    body: int
    cta_text: int


CHANNEL_LIMITS = {
    "email": Limits(subject=150, body=5000, cta_text=80),
    "sms": Limits(subject=0, body=320, cta_text=40),  # the body as sent, opt-out text included
    "push": Limits(subject=50, body=150, cta_text=30),  # what browsers show without cutting
    "in_app": Limits(subject=100, body=600, cta_text=40),
    "intercom": Limits(subject=150, body=2000, cta_text=80),
}
DEFAULT_LIMITS = Limits(subject=150, body=2000, cta_text=80)

# The placeholders guardrails.pii.detector puts where it removed something: echoed back, they would read
# "Hi [NAME]" to the user.
_PLACEHOLDER = re.compile(r"\[(?:EMAIL|PHONE|CARD|IBAN|SSN|IP|ADDRESS|SECRET|DOB|NAME)\]")
_PLAIN_VALUE = re.compile(r"[A-Za-z0-9_./:-]{1,80}")


class Rejected(Exception):
    """The answer cannot be sent; `code` is stable, `message` is safe to store (no user data)."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class _Answer(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    subject: str
    body: str
    cta_text: str
    ui_component: str
    deep_link: str


@dataclass(frozen=True)
class Output:
    subject: str
    body: str  # the model's body with the protected text put back
    cta_text: str
    ui_component: str
    deep_link: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Rules:
    """What one answer is checked against."""

    channel: str
    links: Sequence[str]  # the deep links offered in the schema
    draft_texts: Sequence[str]  # the static draft: its URLs and variables may be kept
    protected: Sequence[str] = ()
    banned_words: Sequence[str] = ()
    allowed_link_domains: Sequence[str] = ()
    contact: Any = None  # the recipient's Contact, for the second PII scan
    region: str = pii.DEFAULT_REGION
    pii_budget_seconds: float = 0.05


def components_for(channel: str) -> tuple[str, ...]:
    return CHANNEL_COMPONENTS.get(channel, UI_COMPONENTS)


def limits_for(channel: str) -> Limits:
    return CHANNEL_LIMITS.get(channel, DEFAULT_LIMITS)


def response_schema(*, channel: str, links: Sequence[str]) -> dict[str, Any]:
    """The `json_schema` of the request's response_format (strict: every field required)."""
    limits = limits_for(channel)
    subject = (
        "Empty: this channel has no subject."
        if limits.subject == 0
        else f"Subject or title, at most {limits.subject} characters."
    )
    return {
        "name": SCHEMA_NAME,
        "strict": True,
        "schema": {
            "type": "object",
            "properties": {
                "subject": {"type": "string", "description": subject},
                "body": {"type": "string", "description": f"At most {limits.body} characters."},
                "cta_text": {
                    "type": "string",
                    "description": f"Call to action, at most {limits.cta_text} characters.",
                },
                "ui_component": {"type": "string", "enum": list(components_for(channel))},
                "deep_link": {"type": "string", "enum": list(links)},
            },
            "required": ["subject", "body", "cta_text", "ui_component", "deep_link"],
            "additionalProperties": False,
        },
    }


def split_protected(
    body: str, *, texts: Iterable[str], line_markers: Iterable[str] = ()
) -> tuple[str, list[str]]:
    """The body without its compliance text, and that text in the order it appeared: the first
    occurrence of each of `texts`, and every line holding {{ unsubscribe_url }} or one of
    `line_markers` (the unsubscribe link itself, once filled in)."""
    markers = [marker for marker in line_markers if marker]
    spans = []
    for text in texts:
        text = (text or "").strip()
        position = body.find(text) if text else -1
        if position >= 0:
            spans.append((position, position + len(text)))
    offset = 0
    for line in body.splitlines(keepends=True):
        if "unsubscribe_url" in variables_in(line) or any(marker in line for marker in markers):
            spans.append((offset, offset + len(line.rstrip("\r\n"))))
        offset += len(line)
    merged: list[list[int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    kept, protected, position = [], [], 0
    for start, end in merged:
        kept.append(body[position:start])
        protected.append(body[start:end].strip())
        position = end
    kept.append(body[position:])
    remaining = re.sub(r"[ \t]+(?=\n)", "", "".join(kept))
    return re.sub(r"\n{3,}", "\n\n", remaining).strip(), protected


def join_protected(body: str, protected: Sequence[str], *, channel: str) -> str:
    if not protected:
        return body
    if channel in ("sms", "push"):
        return " ".join([body.rstrip(), *protected])
    return "\n\n".join([body.rstrip(), "\n".join(protected)])


def validate(content: str | None, rules: Rules) -> Output:
    """The answer, checked; Rejected on the first thing wrong with it."""
    answer = _parse(content)
    _check_choices(answer, rules)
    limits = limits_for(rules.channel)
    written = {name: getattr(answer, name).strip() for name in FIELDS}
    for text in rules.protected:  # written by the model as well, it would be there twice
        written["body"] = written["body"].replace(text, "").strip()
    if limits.subject == 0:
        written["subject"] = ""  # never sent on this channel: not worth a fallback
    if not written["body"]:
        raise Rejected(SCHEMA_INVALID, "the body is empty")
    body = join_protected(written["body"], rules.protected, channel=rules.channel)
    _check_lengths({**written, "body": body}, limits, rules.channel)
    _check_variables(written, rules)
    _check_words(written, rules)
    # Personal data first: an e-mail address is a link too, and the graver reason is recorded.
    _check_pii(written, rules)
    _check_links(written, rules)
    return Output(
        subject=written["subject"],
        body=body,
        cta_text=written["cta_text"],
        ui_component=answer.ui_component,
        deep_link=answer.deep_link,
    )


def _parse(content: str | None) -> _Answer:
    if not content:
        raise Rejected(INVALID_JSON, "the answer is empty")
    try:
        data = json.loads(content)
    except ValueError as error:
        raise Rejected(INVALID_JSON, f"the answer is not JSON ({error.msg} at {error.pos})") from None
    if not isinstance(data, dict):
        raise Rejected(INVALID_JSON, f"the answer is a JSON {type(data).__name__}, not an object")
    try:
        return _Answer.model_validate(data)
    except ValidationError as error:
        # Locations and messages only: pydantic's full text quotes the offending input.
        problems = "; ".join(
            f"{'.'.join(str(part) for part in problem['loc']) or 'answer'}: {problem['msg']}"
            for problem in error.errors()[:3]
        )
        raise Rejected(SCHEMA_INVALID, problems) from None


def _check_choices(answer: _Answer, rules: Rules) -> None:
    component = answer.ui_component
    if component not in UI_COMPONENTS:
        raise Rejected(COMPONENT_NOT_ALLOWED, f"ui_component {_shown(component)} is not in the allowlist")
    if component not in components_for(rules.channel):
        raise Rejected(COMPONENT_NOT_ALLOWED, f"ui_component {component} is not used on {rules.channel}")
    if answer.deep_link not in rules.links:
        raise Rejected(
            LINK_NOT_ALLOWED, f"deep_link {_shown(answer.deep_link)} is not one of the offered links"
        )


def _shown(value: str) -> str:
    """A model-chosen value for the record, when it plainly holds nothing personal: a short word
    or path (it was meant to be an enum value); else only its length."""
    if _PLAIN_VALUE.fullmatch(value) and sum(character.isdigit() for character in value) < 7:
        return repr(value)
    return f"(a value of {len(value)} characters)"


def _check_lengths(texts: dict[str, str], limits: Limits, channel: str) -> None:
    for name in FIELDS:
        limit = getattr(limits, name)
        if limit and len(texts[name]) > limit:
            raise Rejected(TOO_LONG, f"{name} has {len(texts[name])} characters, over {limit} for {channel}")


def _check_variables(texts: dict[str, str], rules: Rules) -> None:
    values = list(texts.values())
    if any("{{" in text or "}}" in text for text in (VARIABLE.sub("", value) for value in values)):
        raise Rejected(UNKNOWN_VARIABLE, "a malformed {{ variable }}")
    unknown = unknown_variables(*values)
    if unknown:
        raise Rejected(UNKNOWN_VARIABLE, f"unknown variables {', '.join(unknown)}")
    # A feature variable the draft did not hold would never be filled: only the gateway's
    # contact variables are rendered after this point.
    allowed = set(CONTACT_VARIABLES).union(*(variables_in(text) for text in rules.draft_texts))
    added = sorted(set().union(*(variables_in(text) for text in values)) - allowed)
    if added:
        raise Rejected(UNKNOWN_VARIABLE, f"variables {', '.join(added)} are not in the draft")


def _check_links(texts: dict[str, str], rules: Rules) -> None:
    """Whatever a mail client would make a link of (bare domains, e-mail addresses, disguised
    links: nudges.content.link_scan) must go to a host the draft already links to or to one of the
    workspace's allowed domains."""
    known = {
        link.host
        for text in (*rules.draft_texts, *rules.links)
        for link in link_scan.links_in(text)
        if link.host
    }
    for name, text in texts.items():
        for link in link_scan.links_in(text):
            if link.host in known or link_scan.host_allowed(link.host, rules.allowed_link_domains):
                continue
            raise Rejected(LINK_NOT_ALLOWED, f"{name} holds a link that is not allowed ({link.kind})")


def _check_words(texts: dict[str, str], rules: Rules) -> None:
    for name, text in texts.items():
        if found := _PLACEHOLDER.search(text):
            raise Rejected(REDACTION_PLACEHOLDER, f"{name} repeats the placeholder {found.group()}")
    for word in rules.banned_words:
        word = (word or "").strip()
        if not word:
            continue
        pattern = re.compile(r"(?<!\w)" + re.escape(word) + r"(?!\w)", re.IGNORECASE)
        for name, text in texts.items():
            if pattern.search(text):
                raise Rejected(BANNED_WORD, f"{name} holds the banned word {word!r}")


def _check_pii(texts: dict[str, str], rules: Rules) -> None:
    scan = pii.redact_for_llm(
        texts, contact=rules.contact, region=rules.region, budget_seconds=rules.pii_budget_seconds
    )
    if scan.blocked:
        raise Rejected(scan.reason, "the output could not be scanned for personal data")
    if scan.findings:
        where = sorted({finding.path.removeprefix("$.") for finding in scan.findings})
        kinds = ", ".join(f"{kind} x{count}" for kind, count in sorted(scan.findings_summary().items()))
        raise Rejected(PII_IN_OUTPUT, f"personal data in {', '.join(where)} ({kinds})")
