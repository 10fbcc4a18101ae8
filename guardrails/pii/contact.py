"""The end user's own contact values, found wherever they appear (`guardrails/pii/detector.py`).

Their email, phone, names and address lines are matched in any case, as whole words; a first
name that is also a common word ("Will", "May") only when capitalised. The values of one contact
are compiled once (`contact_matcher`, cached): a nudge redacts several texts of one user.
"""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import phonenumbers

from guardrails.pii.keys import normalise_key

# Contact address parts too coarse to be PII on their own, and too short to match safely.
ADDRESS_KEYS_KEPT = frozenset({"country", "countrycode", "state", "region", "province"})
# First names that are also common words: matched only when capitalised ("Will", not "will").
_WORD_NAMES = (
    "will may mark bill grace hope joy faith rose june april summer dawn ray guy art pat rob sue don jack "
    "frank chase hunter lane page drew gene rich sky amber ruby pearl iris lily ivy holly max bob carol "
    "king young long brown white green black rice price hall wood bell love cook stone park ward power "
    "field lake hill north west best"
)
NAMES_THAT_ARE_WORDS = frozenset(_WORD_NAMES.split())

_WHITESPACE = re.compile(r"\s+")


def normalise_value(text: str) -> str:
    return _WHITESPACE.sub(" ", text).strip().casefold()


@dataclass(slots=True, frozen=True)
class ContactMatcher:
    # (first word of some values in lower case, the pattern of those values): the word is found
    # with str.find, and the pattern tried only there.
    needles: tuple[tuple[str, re.Pattern], ...]
    # All values at once, for a text whose lower-case form has another length (positions differ).
    pattern: re.Pattern | None
    types: dict[str, str]
    phone_digits: str


NO_CONTACT = ContactMatcher(needles=(), pattern=None, types={}, phone_digits="")


def contact_values(contact: Any) -> tuple[tuple[str, str], ...]:
    """(type, value) pairs of a Contact (or a mapping with the same fields), sorted, for caching."""
    if contact is None:
        return ()

    def read(name: str) -> Any:
        return contact.get(name) if isinstance(contact, Mapping) else getattr(contact, name, None)

    values: set[tuple[str, str]] = set()
    for name, kind in (("email", "EMAIL"), ("phone", "PHONE")):
        if text := str(read(name) or "").strip():
            values.add((kind, text))
    for name in ("first_name", "last_name", "name"):
        text = str(read(name) or "").strip()
        values.update(("NAME", part) for part in [text, *text.split()] if len(part) >= 2)
    address = read("address")
    parts = address.items() if isinstance(address, Mapping) else [("line", address)]
    for key, part in parts:
        text = part.strip() if isinstance(part, str) else ""
        if len(text) >= 3 and normalise_key(str(key)) not in ADDRESS_KEYS_KEPT:
            values.add(("ADDRESS", text))
    return tuple(sorted(values))


def _alternative(kind: str, value: str) -> str:
    words = [re.escape(word) for word in value.split()]
    if kind == "NAME" and len(words) == 1 and value.casefold() in NAMES_THAT_ARE_WORDS:
        return f"(?-i:{re.escape(value[0].upper())}){re.escape(value[1:])}"
    return r"\s+".join(words)


def _whole_words(values: list[tuple[str, str]]) -> re.Pattern:
    alternation = "|".join(_alternative(kind, value) for kind, value in values)
    return re.compile(rf"(?<!\w)(?:{alternation})(?!\w)", re.IGNORECASE)


@lru_cache(maxsize=1024)
def contact_matcher(values: tuple[tuple[str, str], ...], region: str) -> ContactMatcher:
    """Compiled once per set of contact values: a nudge redacts several texts of one user."""
    if not values:
        return NO_CONTACT
    longest_first = sorted(values, key=lambda item: len(item[1]), reverse=True)
    by_first_word: dict[str, list[tuple[str, str]]] = {}
    for kind, value in longest_first:
        by_first_word.setdefault(value.split()[0].lower(), []).append((kind, value))
    phone_digits = ""
    for kind, value in values:
        if kind == "PHONE":
            # The stored number written any way ("(202) 555-0143", "202.555.0143") is theirs.
            try:
                phone_digits = phonenumbers.national_significant_number(phonenumbers.parse(value, region))
            except phonenumbers.NumberParseException:
                phone_digits = "".join(character for character in value if character.isdigit())
    return ContactMatcher(
        needles=tuple((word, _whole_words(group)) for word, group in by_first_word.items()),
        pattern=_whole_words(longest_first),
        types={normalise_value(value): kind for kind, value in reversed(longest_first)},
        phone_digits=phone_digits if len(phone_digits) >= 7 else "",
    )
