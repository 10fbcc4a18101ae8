"""Format and checksum tests of the PII detector's candidates: card numbers (issuer prefixes and
Luhn), IBAN (mod 97), US social security numbers (area rules), phone numbers (`phonenumbers`, as
the region writes them), IP addresses, passwords and random tokens.

`guardrails/pii/validators.py` applies them to what the patterns of `guardrails/pii/patterns.py`
matched.
"""

import ipaddress
import math
import re
from collections import Counter
from functools import lru_cache
from itertools import pairwise

import phonenumbers
from stdnum import iban, luhn
from stdnum.us import ssn

# A bare digit run after one of these is an identifier, not a phone number.
_IDENTIFIER_CONTEXT = re.compile(
    r"(?i:order|invoice|ticket|ref(?:erence)?|id|account|acct|tracking|receipt|confirmation|transaction|"
    r"customer|user|build|job|case)\W{0,3}(?i:no\.?|number|\#)?\W{0,3}\Z"
)
_SSN_FORMATTED = re.compile(r"\d{3}([- ])\d{2}\1\d{4}")
_CARD_GROUPS = ((4, 6, 5), (4, 6, 4))
_GROUPED_IN_FOURS = re.compile(r"\d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,4})?")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def is_ip_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def is_iban(text: str) -> bool:
    return iban.is_valid(text)


def _card_network_accepts(digits: str) -> bool:
    """Issuer prefixes and lengths of the networks a person would paste: Luhn alone passes one
    random digit run in ten."""
    length = len(digits)
    first_two, first_three, first_four = int(digits[:2]), int(digits[:3]), int(digits[:4])
    if digits[0] == "4":
        return length in (13, 16, 19)
    if 51 <= first_two <= 55 or 2221 <= first_four <= 2720:
        return length == 16
    if first_two in (34, 37):
        return length == 15
    if first_four == 6011 or first_two == 65 or 644 <= first_three <= 649 or 3528 <= first_four <= 3589:
        return 16 <= length <= 19
    if first_two in (36, 38, 39) or 300 <= first_three <= 305:
        return 14 <= length <= 19
    if first_two in (50, 56, 57, 58, 62, 63, 67):
        return 13 <= length <= 19
    return False


def is_card(candidate: str, digits: str) -> bool:
    if not 13 <= len(digits) <= 19 or any(character in candidate for character in "+()./\t"):
        return False
    if len(digits) != len(candidate):
        separators = {character for character in candidate if not character.isdigit()}
        if len(separators) != 1:
            return False
        groups = tuple(len(group) for group in candidate.split(separators.pop()))
        evenly_grouped = all(size == 4 for size in groups[:-1]) and 1 <= groups[-1] <= 4
        if not evenly_grouped and groups not in _CARD_GROUPS:
            return False
    return _card_network_accepts(digits) and luhn.is_valid(digits)


def grouped_like_card(candidate: str) -> bool:
    """Digits in groups of four, as a card or a reference is written, never a phone number."""
    return _GROUPED_IN_FOURS.fullmatch(candidate) is not None


def is_ssn(candidate: str) -> bool:
    """Formatted 123-45-6789 or 123 45 6789; `stdnum` applies the area, group and serial rules
    (no 000, 666 or 9xx area, no 00 group, no 0000 serial, no published sample numbers)."""
    if not _SSN_FORMATTED.fullmatch(candidate):
        return False
    return ssn.is_valid(candidate.replace(" ", ""))


def is_labelled_ssn(value: str) -> bool:
    return ssn.is_valid(value.replace(" ", "").replace("-", ""))


def _national_prefix_required(metadata: phonenumbers.PhoneMetadata, national_number: str) -> bool:
    """Whether numbers of this shape are written with the trunk prefix (0 in most of Europe) in
    national format. Mobile numbers in India are not; German and French ones are."""
    for number_format in metadata.number_format:
        leading = number_format.leading_digits_pattern
        if leading and not re.match(leading[-1], national_number):
            continue
        if re.fullmatch(number_format.pattern, national_number):
            rule = number_format.national_prefix_formatting_rule or ""
            written_with_prefix = metadata.national_prefix in rule.split("\\")[0]
            return written_with_prefix and not number_format.national_prefix_optional_when_formatting
    return False


@lru_cache(maxsize=8192)
def is_phone(candidate: str, region: str) -> bool:
    """phonenumbers on the candidate only. A number written without its country code must also be
    written as people of the region write it: a German "1699999999" lacks its leading 0 and is
    more likely an identifier or a timestamp."""
    text = "+" + candidate[2:] if candidate.startswith("00") else candidate
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return False
    if not phonenumbers.is_valid_number(number):
        return False
    if text.lstrip("(").startswith("+"):
        return True
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    if metadata is None or not metadata.national_prefix:
        return True
    national_number = phonenumbers.national_significant_number(number)
    written = "".join(character for character in text if character.isdigit())
    if written.startswith(metadata.national_prefix) and written != national_number:
        return True
    return not _national_prefix_required(metadata, national_number)


def follows_identifier_label(text: str, start: int) -> bool:
    return _IDENTIFIER_CONTEXT.search(text, max(0, start - 24), start) is not None


def looks_like_password(value: str) -> bool:
    """A labelled value ("password: hunter22") rather than prose ("password: reset it")."""
    if len(value) >= 12:
        return True
    has_digit = any(character.isdigit() for character in value)
    has_symbol = any(not character.isalnum() for character in value)
    has_upper = any(character.isupper() for character in value[1:])
    return has_digit or has_symbol or has_upper


def _entropy(value: str) -> float:
    length = len(value)
    return -sum(count / length * math.log2(count / length) for count in Counter(value).values())


def is_random_token(value: str) -> bool:
    """A long run of mixed letters and digits that changes character class often and has high
    entropy: an API key of an unknown provider. UUIDs, hex digests and camel-case identifiers
    ("OnboardingChecklistWidget42") are not tokens."""
    if _UUID.fullmatch(value):
        return False
    classes = [
        "d" if character.isdigit() else "u" if character.isupper() else "l" if character.islower() else "o"
        for character in value
    ]
    if classes.count("d") < 2 or classes.count("u") < 2 or classes.count("l") < 2:
        return False
    changes = sum(previous != current for previous, current in pairwise(classes))
    return changes >= 0.3 * len(value) and _entropy(value) >= 3.5
