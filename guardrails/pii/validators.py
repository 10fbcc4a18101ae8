"""The validators of the PII detector's candidates (`guardrails/pii/detector.py`): each takes a
candidate that a pattern of `guardrails/pii/patterns.py` matched, tests it (`guardrails/pii/formats.py`)
and returns the spans that are PII, with their type ("4111 1111 1111 1111" is a CARD only if Luhn
and the issuer agree)."""

import re
import time
from collections.abc import Callable

from guardrails.pii import contact as contacts
from guardrails.pii import formats, patterns


class DetectionTimeout(Exception):
    pass


class Scan:
    __slots__ = ("contact", "deadline", "region")

    def __init__(self, *, contact: contacts.ContactMatcher, region: str, deadline: float | None) -> None:
        self.contact = contact
        self.region = region
        self.deadline = deadline

    def check_deadline(self) -> None:
        if self.deadline is not None and time.perf_counter() > self.deadline:
            raise DetectionTimeout


Span = tuple[str, int, int]


def _number_kind(scan: Scan, text: str, candidate: str, start: int) -> str | None:
    digits = "".join(character for character in candidate if character.isdigit())
    if formats.is_card(candidate, digits):
        return "CARD"
    if formats.is_ssn(candidate):
        return "SSN"
    if len(digits) < 7 or len(digits) > 17:
        return None
    if scan.contact.phone_digits and digits.endswith(scan.contact.phone_digits):
        return "PHONE"
    if candidate.isdigit() and formats.follows_identifier_label(text, start):
        return None
    return "PHONE" if formats.is_phone(candidate, scan.region) else None


def _detect_number(scan: Scan, text: str, match: re.Match, value_group: int | None) -> list[Span]:
    start, end = match.span()
    if text[end - 1] == ")" and text.count("(", start, end) < text.count(")", start, end):
        end -= 1
    if kind := _number_kind(scan, text, text[start:end], start):
        return [(kind, start, end)]
    # A run of several numbers separated by spaces ("415 555 0123 415 555 0199", "2019 4155550123"):
    # the longest pieces that validate, from the left.
    if formats.grouped_like_card(text[start:end]):
        return []
    parts = [part.span() for part in re.finditer(r"\S+", text[start:end])]
    spans, first = [], 0
    while first < len(parts):
        for last in range(len(parts), first, -1):
            if last - first == len(parts):
                continue
            piece_start, piece_end = start + parts[first][0], start + parts[last - 1][1]
            if kind := _number_kind(scan, text, text[piece_start:piece_end], piece_start):
                spans.append((kind, piece_start, piece_end))
                first = last
                break
        else:
            first += 1
    return spans


def _detect_iban(scan: Scan, text: str, match: re.Match, value_group: int | None) -> list[Span]:
    candidate = match.group()
    # A following capitalised word or number group may have been taken in: drop groups from the end.
    while len(candidate.replace(" ", "")) >= 15:
        if formats.is_iban(candidate):
            return [("IBAN", match.start(), match.start() + len(candidate))]
        if " " not in candidate:
            break
        candidate = candidate.rsplit(" ", 1)[0]
    return []


def _labelled(kind: str, validator: Callable[[str], bool] | None = None) -> Callable:
    """The value after the label, without a sentence's closing full stop."""

    def detect(scan: Scan, text: str, match: re.Match, value_group: int | None) -> list[Span]:
        start, end = match.span(value_group)
        value = text[start:end].rstrip(".")
        if not value or (validator is not None and not validator(value)):
            return []
        return [(kind, start, start + len(value))]

    return detect


def _whole(kind: str, validator: Callable[[str], bool] | None = None) -> Callable:
    def detect(scan: Scan, text: str, match: re.Match, value_group: int | None) -> list[Span]:
        if validator is not None and not validator(match.group()):
            return []
        return [(kind, match.start(), match.end())]

    return detect


def _nothing(scan: Scan, text: str, match: re.Match, value_group: int | None) -> list[Span]:
    return []


# Candidate kind (see `guardrails.pii.patterns`) -> the detector that validates it and returns PII spans.
DETECTORS: dict[str, Callable[[Scan, str, re.Match, int | None], list[Span]]] = {
    "skip_date": _nothing,
    "skip_price": _nothing,
    "email": _whole("EMAIL"),
    "ipv4": _whole("IP", formats.is_ip_address),
    "ipv6": _whole("IP", formats.is_ip_address),
    "secret": _whole("SECRET"),
    "token": _whole("SECRET", formats.is_random_token),
    "iban": _detect_iban,
    "address": _whole("ADDRESS"),
    "number": _detect_number,
    "bearer": _labelled("SECRET", lambda value: len(value) >= 12),
    "labelled_secret": _labelled("SECRET", formats.looks_like_password),
    "dob": _labelled("DOB"),
    "labelled_ssn": _labelled("SSN", formats.is_labelled_ssn),
}


def address_ending_at(text: str, start: int, end: int) -> list[Span]:
    """The address, in any case, that ends with the ZIP code (five digits) or the British postcode
    ("nw1 6xe") at the digits `start:end`; lower-case prose is full of "5 minutes down the road",
    so only a full address, postcode included, is taken."""
    if end - start == 5 and (start == 0 or text[start - 1] in " \t"):
        if re.match(r"-\d{4}(?!\d)", text[end : end + 6]):
            end += 5
        pattern = patterns.ADDRESS_TO_ZIP
    elif end - start <= 2 and start and text[start - 1].isalpha():
        word_start = (
            max(text.rfind(" ", max(0, start - 3), start), text.rfind("\t", max(0, start - 3), start)) + 1
        )
        postcode = patterns.UK_POSTCODE.match(text, word_start)
        if word_start == 0 or postcode is None:
            return []
        start, end, pattern = word_start, postcode.end(), patterns.ADDRESS_TO_POSTCODE
    else:
        return []
    if found := pattern.search(text, max(0, start - patterns.ADDRESS_REACH), end):
        return [("ADDRESS", found.start(), end)]
    return []
