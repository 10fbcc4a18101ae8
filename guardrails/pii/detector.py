"""PII detection and redaction: what leaves the platform for an LLM never carries personal data.

    redact(value, contact=..., region="US") -> Redaction(value, findings)
    redact_for_llm(value, contact=..., region=..., budget_seconds=0.05) -> SafeRedaction

`value` is a string or nested JSON (dicts, lists, scalars). Each detected item is replaced by a
typed placeholder (`[EMAIL]`, `[PHONE]`, `[CARD]`, `[IBAN]`, `[SSN]`, `[IP]`, `[ADDRESS]`,
`[SECRET]`, `[DOB]`, `[NAME]`); a dict value whose key names a PII field ("email",
"phoneNumber", "ssn") is replaced whatever it holds, and PII inside a key is replaced too. The
findings say what was removed and where (JSON path, and the span in the original string) but
never hold the removed text, so the audit log can keep them.

The end user's own `Contact` values (email, phone, names, address lines) are found wherever they
appear, in any case, as whole words. National phone formats are read in `region`, the end user's
country (`region_from_locale`).

`redact_for_llm` is the fail-safe entry point: if detection raises or runs past its time budget,
the caller is told to block, and gets no value. The budget is checked between strings, between
JSON nodes and between candidates, never with threads.

Limits, by design: a person's name is found only when it is the end user's own (there is no
name recogniser for third parties); a bare "name" key is kept (it names steps and plans); a
key or token of an unknown provider is found only when it is long, mixed-case and holds digits.

Candidates are found by `guardrails/pii/patterns.py` and tested by `guardrails/pii/validators.py`
(with `guardrails/pii/formats.py`); the PII dict keys are in `guardrails/pii/keys.py`, the contact
matcher in `guardrails/pii/contact.py`. Text written percent-encoded, with HTML character
references or in base64 inside a URL parameter is scanned again decoded
(`guardrails/pii/decoding.py`), and what is found there is replaced in its written form. The
corpus and the figures are in tests/guardrails/pii_corpus.py and bench/pii.py.
"""

import logging
import re
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import phonenumbers

from guardrails.pii import contact as contacts
from guardrails.pii import decoding, keys, patterns
from guardrails.pii.validators import DETECTORS, DetectionTimeout, Scan, Span, address_ending_at

__all__ = [
    "DETECTORS",
    "DetectionTimeout",
    "Finding",
    "Redaction",
    "SafeRedaction",
    "redact",
    "redact_for_llm",
]

logger = logging.getLogger(__name__)

DEFAULT_REGION = "US"
REASON_ERROR = "pii_detection_error"
REASON_TIMEOUT = "pii_detection_timeout"

_PATH_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(slots=True, frozen=True)
class Finding:
    """One removed item: its type and where it was, never its text. `start`/`end` index the
    original string at `path`; both are None when a PII-named key's whole value was replaced.
    `in_key` marks PII found in a dict key (the path then shows the redacted key)."""

    type: str
    path: str
    start: int | None = None
    end: int | None = None
    in_key: bool = False


def _summary(findings: list[Finding]) -> dict[str, int]:
    return dict(Counter(finding.type for finding in findings))


@dataclass(slots=True)
class Redaction:
    value: Any
    findings: list[Finding]

    def findings_summary(self) -> dict[str, int]:
        return _summary(self.findings)


@dataclass(slots=True)
class SafeRedaction:
    """`blocked` means: do not call the LLM; `value` is then None."""

    blocked: bool
    reason: str
    value: Any = None
    findings: list[Finding] = field(default_factory=list)

    def findings_summary(self) -> dict[str, int]:
        return _summary(self.findings)


_DE_STREET_ENDINGS = ("straße", "strasse", "str.", "weg", "allee", "platz", "gasse", "ring", "damm", "ufer")


def _candidate_starts(text: str, anchor: int, floor: int) -> list[int]:
    """Where a candidate holding the digit or "@" at `anchor` can start, leftmost first: the
    previous word when it may begin a German street or a price ("Hauptstraße 5", "$ 12"), the
    start of the anchor's word, each point after punctuation within it ("tel:+1..."), the anchor."""
    if anchor == floor:
        cut, word_start = -1, anchor
    elif text[anchor - 1] in " \n\t":
        cut, word_start = anchor - 1, anchor
    else:
        low = max(floor, anchor - 80)
        cut = max(text.rfind(" ", low, anchor), text.rfind("\n", low, anchor), text.rfind("\t", low, anchor))
        word_start = cut + 1 if cut >= 0 else low
    starts = [word_start]
    if cut > floor and not text[cut - 1].isspace():
        previous = text[max(floor, cut - 40) : cut].rsplit(None, 1)[-1]
        if previous.endswith(_DE_STREET_ENDINGS) or previous in ("$", "€", "£", "¥"):
            starts.insert(0, cut - len(previous))
    if anchor > word_start:
        starts.extend(found.end() for found in patterns.PUNCTUATION.finditer(text, word_start, anchor))
        if starts[-1] != anchor:
            starts.append(anchor)
    return starts


def _anchored_spans(text: str, scan: Scan, spans: list[Span]) -> None:
    search, match_at, kinds = patterns.ANCHOR.search, patterns.ANCHORED.match, patterns.ANCHORED_KINDS
    position, anchors = 0, 0
    keep = patterns.ANCHOR_KEEP
    while (anchor := search(text, position)) is not None:
        anchors += 1
        if anchors % 64 == 0:
            scan.check_deadline()
        if anchor.lastindex != keep:
            position = anchor.end()
            continue
        found_before = len(spans)
        for start in _candidate_starts(text, anchor.start(), position):
            if found := match_at(text, start):
                kind, value_group = kinds[found.lastindex]
                spans.extend(DETECTORS[kind](scan, text, found, value_group))
                position = found.end()
                break
        else:
            position = anchor.end()
        digits = anchor.end() - anchor.start()
        if len(spans) == found_before and (
            digits == 5 or (digits <= 2 and text[anchor.start() - 1].isalpha())
        ):
            spans.extend(address_ending_at(text, anchor.start(), anchor.end()))


def _matches_at_words(pattern: re.Pattern, text: str, lowered: str | None, words) -> list[re.Match]:
    """Matches of `pattern` where one of `words` (lower case) occurs: str.find is far cheaper
    than letting the engine try every position. Without an aligned lower-case text, a full scan."""
    if lowered is None:
        return list(pattern.finditer(text))
    found_matches = []
    for word in words:
        position = lowered.find(word)
        while position != -1:
            if found := pattern.match(text, position):
                found_matches.append(found)
            position = lowered.find(word, position + 1)
    return found_matches


def _labelled_spans(text: str, lowered: str | None, scan: Scan, spans: list[Span]) -> None:
    kinds = patterns.LABELLED_KINDS
    for found in _matches_at_words(patterns.LABELLED, text, lowered, patterns.LABEL_WORDS):
        scan.check_deadline()
        kind, value_group = kinds[found.lastindex]
        spans.extend(DETECTORS[kind](scan, text, found, value_group))


def _contact_spans(text: str, lowered: str | None, scan: Scan, spans: list[Span]) -> None:
    matcher = scan.contact
    if matcher.pattern is None:
        return
    if lowered is None:
        found_matches = _matches_at_words(matcher.pattern, text, None, ())
    else:
        found_matches = [
            found
            for word, pattern in matcher.needles
            for found in _matches_at_words(pattern, text, lowered, (word,))
        ]
    for found in found_matches:
        kind = matcher.types.get(contacts.normalise_value(found.group()), "NAME")
        spans.append((kind, found.start(), found.end()))


def _find_spans(text: str, scan: Scan) -> list[Span]:
    spans = _plain_spans(text, scan)
    if decoding.has_encoding(text):
        spans = _with_decoded(spans, _decoded_spans(text, scan))
    return spans


def _decoded_spans(text: str, scan: Scan) -> list[Span]:
    """PII written percent-encoded, in HTML references or in base64 (`pii_decoding`), as spans
    of the written text: the whole encoded form is what gets replaced."""
    spans = []
    for window_start, window_end in decoding.encoded_windows(text):
        decoded = decoding.decode(text[window_start:window_end])
        if decoded is None:
            continue
        for kind, start, end in _plain_spans(decoded.text, scan):
            written_start, written_end = decoded.original_span(start, end)
            spans.append((kind, window_start + written_start, window_start + written_end))
    return spans


def _with_decoded(spans: list[Span], decoded_spans: list[Span]) -> list[Span]:
    """Both sets of spans; overlapping ones become one span over all of them, of the longest
    one's type (a decoded one's on a tie: "[EMAIL]" rather than "[SECRET]" for base64)."""
    if not decoded_spans:
        return spans
    ordered = sorted(
        [(start, end, 0, kind) for kind, start, end in decoded_spans]
        + [(start, end, 1, kind) for kind, start, end in spans]
    )
    merged: list[list] = []  # [start, end, kind, length of the span that gave the kind]
    for start, end, _, kind in ordered:
        if merged and start < merged[-1][1]:
            cluster = merged[-1]
            if end - start > cluster[3]:
                cluster[2], cluster[3] = kind, end - start
            cluster[1] = max(cluster[1], end)
        else:
            merged.append([start, end, kind, end - start])
    return [(kind, start, end) for start, end, kind, _ in merged]


def _plain_spans(text: str, scan: Scan) -> list[Span]:
    spans: list[Span] = []
    _anchored_spans(text, scan, spans)
    lowered = text.lower()
    if len(lowered) != len(text):
        lowered = None  # a few characters ("İ") lengthen in lower case: positions would not line up
    _labelled_spans(text, lowered, scan, spans)
    _contact_spans(text, lowered, scan, spans)
    if len(spans) < 2:
        return spans
    # Overlaps: the earlier span wins, and of two starting together the longer.
    spans.sort(key=lambda span: (span[1], -span[2]))
    kept, covered_until = [], -1
    for span in spans:
        if span[1] >= covered_until:
            kept.append(span)
            covered_until = span[2]
    return kept


def _replace_spans(text: str, spans: list[Span]) -> str:
    pieces, position = [], 0
    for kind, start, end in spans:
        pieces.append(text[position:start])
        pieces.append(f"[{kind}]")
        position = end
    pieces.append(text[position:])
    return "".join(pieces)


def _redact_string(text: str, path: str, scan: Scan, findings: list[Finding]) -> str:
    spans = _find_spans(text, scan)
    if not spans:
        return text
    findings.extend(Finding(type=kind, path=path, start=start, end=end) for kind, start, end in spans)
    return _replace_spans(text, spans)


# --- JSON -----------------------------------------------------------------------------------------


def _child_path(path: str, key: str) -> str:
    if _PATH_IDENTIFIER.fullmatch(key):
        return f"{path}.{key}"
    return path + '["' + key.replace("\\", "\\\\").replace('"', '\\"') + '"]'


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or value == {} or value == []


def _redact_node(value: Any, path: str, scan: Scan, findings: list[Finding]) -> Any:
    scan.check_deadline()
    if isinstance(value, str):
        return _redact_string(value, path, scan, findings)
    if isinstance(value, Mapping):
        redacted: dict[Any, Any] = {}
        for key, item in value.items():
            key_text = key if isinstance(key, str) else str(key)
            new_key = key
            if key_spans := _find_spans(key_text, scan):
                new_key = _replace_spans(key_text, key_spans)
                while new_key in redacted:
                    new_key += "'"
                entry_path = _child_path(path, new_key)
                findings.extend(
                    Finding(type=kind, path=entry_path, start=start, end=end, in_key=True)
                    for kind, start, end in key_spans
                )
            child_path = _child_path(path, str(new_key))
            key_type = keys.PII_KEY_TYPES.get(keys.normalise_key(key_text))
            if key_type is not None and not _is_empty(item):
                redacted[new_key] = f"[{key_type}]"
                findings.append(Finding(type=key_type, path=child_path))
            else:
                redacted[new_key] = _redact_node(item, child_path, scan, findings)
        return redacted
    if isinstance(value, list | tuple):
        return [_redact_node(item, f"{path}[{index}]", scan, findings) for index, item in enumerate(value)]
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) >= 1_000_000:
        # A card or phone number sent as a JSON number.
        before = len(findings)
        text = str(value)
        redacted_text = _redact_string(text, path, scan, findings)
        if len(findings) > before:
            whole = findings[before]
            return f"[{whole.type}]" if whole.start == 0 and whole.end == len(text) else redacted_text
    return value


def _scan_for(contact: Any, region: str | None, deadline: float | None) -> Scan:
    region = (region or DEFAULT_REGION).upper()
    if region not in phonenumbers.SUPPORTED_REGIONS:
        region = DEFAULT_REGION
    return Scan(
        contact=contacts.contact_matcher(contacts.contact_values(contact), region),
        region=region,
        deadline=deadline,
    )


def redact(value: Any, *, contact: Any = None, region: str | None = DEFAULT_REGION) -> Redaction:
    """Redact a string or nested JSON. Raises on a detector error; see `redact_for_llm`."""
    findings: list[Finding] = []
    redacted = _redact_node(value, "$", _scan_for(contact, region, None), findings)
    return Redaction(value=redacted, findings=findings)


def redact_for_llm(
    value: Any,
    *,
    contact: Any = None,
    region: str | None = DEFAULT_REGION,
    budget_seconds: float = 0.05,
) -> SafeRedaction:
    """Redact, or tell the caller to block when detection fails or takes longer than the budget."""
    started = time.perf_counter()
    try:
        findings: list[Finding] = []
        scan = _scan_for(contact, region, started + budget_seconds)
        redacted = _redact_node(value, "$", scan, findings)
        scan.check_deadline()
    except DetectionTimeout:
        return _blocked(REASON_TIMEOUT, started, budget_seconds, error_type="")
    except Exception as error:
        # The message and traceback may quote the text being scanned: only the error's type is logged.
        return _blocked(REASON_ERROR, started, budget_seconds, error_type=type(error).__name__)
    return SafeRedaction(blocked=False, reason="", value=redacted, findings=findings)


def _blocked(reason: str, started: float, budget_seconds: float, *, error_type: str) -> SafeRedaction:
    logger.warning(
        "guardrails.pii.detector.blocked",
        extra={
            "reason": reason,
            "error_type": error_type,
            "elapsed_ms": round((time.perf_counter() - started) * 1000, 2),
            "budget_ms": round(budget_seconds * 1000, 2),
        },
    )
    return SafeRedaction(blocked=True, reason=reason)


def region_from_locale(locale: str | None, default: str = DEFAULT_REGION) -> str:
    """ "fr-FR", "en_GB" -> "FR", "GB"; a locale without a known country gives `default`."""
    parts = re.split(r"[-_]", locale or "")
    region = parts[-1].upper() if len(parts) > 1 else ""
    return region if region in phonenumbers.SUPPORTED_REGIONS else default
