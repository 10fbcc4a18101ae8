"""The candidate patterns of the PII detector (`guardrails/pii/detector.py`).

Scanning a text with one big alternation costs the regex engine an entry at every character
(about 0.5 MB/s here). Nearly all PII holds a digit or an "@", or follows a label ("DOB:",
"Bearer", "password:"), so the detector instead jumps from digit run to digit run (a C-speed
search) and tries `ANCHORED.match` only at the few places a candidate containing it can start,
and finds labels with `str.find` before trying `LABELLED.match` there. Only the candidates are
validated (`guardrails/pii/validators.py`, with the format tests of `guardrails/pii/formats.py`).

Each alternation ends every alternative with an empty group, so `match.lastindex` says which
kind matched (`ANCHORED_KINDS`), and an alternative's own group, where it has one, marks the
part that is PII ("Bearer <token>" keeps "Bearer"). Kinds named `skip_*` consume dates, times
and prices so that their digits are never read as a phone number; they produce no finding.

The end user's own contact values are matched by `guardrails/pii/contact.py`.
"""

import re

_MONTH = (
    r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|June?|July?|Aug(?:ust)?|"
    r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?|janvier|février|mars|avril|mai|juin|"
    r"juillet|août|septembre|octobre|novembre|décembre|Januar|Februar|März|Juni|Juli|Oktober|Dezember)\.?"
)
_DATE = (
    r"(?:\d{4}-\d{1,2}-\d{1,2}|\d{1,2}[/.\-]\d{1,2}[/.\-](?:\d{4}|\d{2})"
    rf"|\d{{1,2}}(?:st|nd|rd|th|er)?\.?[ \t]+{_MONTH},?[ \t]+\d{{4}}"
    rf"|{_MONTH}[ \t]+\d{{1,2}}(?:st|nd|rd|th)?,?[ \t]+\d{{4}})(?![\w/]|[.\-]\d)"
)
_STREET_SUFFIX = (
    r"(?:(?:Street|Avenue|Road|Boulevard|Lane|Drive|Court|Place|Way|Terrace|Parkway|Highway|Square|"
    r"Circle|Close|Crescent|Gardens|Grove|Mews|Row)\b|(?:St|Ave|Rd|Blvd|Ln|Dr|Ct|Pl|Pkwy|Hwy|Sq|Cir)\b\.?)"
)
_CAPITALISED = r"[A-ZÀ-ÝÄÖÜ][\w'\u2019-]*"
_FRENCH_LINK = r"(?:(?:de|du|des|la|le|les|d'|l'|d\u2019|l\u2019)[ \t]*)*"

# "1600 Pennsylvania Avenue NW": the quadrant after the street type is part of the street.
_DIRECTIONAL = r"(?:[ \t]+(?:NE|NW|SE|SW|N|S|E|W)\b\.?)?"
_UNIT = r"(?:,?[ \t]+(?:Apt|Apartment|Suite|Ste|Unit|Flat|Floor)\.?[ \t]*\#?[ \t]*[\w-]{1,6})?"
_ADDRESS_US_UK = (
    rf"(?:{_CAPITALISED}\.?[ \t]+){{1,4}}{_STREET_SUFFIX}{_DIRECTIONAL}{_UNIT}"
    rf"(?:,[ \t]*{_CAPITALISED}(?:[ \t]+{_CAPITALISED}){{0,2}},?[ \t]+"
    r"(?:(?:[A-Z]{2}|D\.C\.)[ \t]+\d{5}(?:-\d{4})?|[A-Z]{1,2}\d[A-Z\d]?[ \t]*\d[A-Z]{2}))?"
)
_US_STATES = (
    "AL AK AZ AR CA CO CT DE FL GA HI ID IL IN IA KS KY LA ME MD MA MI MN MS MO MT NE NV NH NJ NM NY "
    "NC ND OH OK OR PA RI SC SD TN TX UT VT VA WA WV WI WY DC PR GU VI AS MP"
)
# A US address in any case ("1600 pennsylvania avenue nw, washington dc 20500"), whole: found from
# its ZIP code backwards (`ADDRESS_TO_ZIP.search(text, window_start, zip_end)`), as lower-case
# prose is full of "5 minutes down the road" that only a state and a ZIP tell from an address.
ADDRESS_TO_ZIP = re.compile(
    r"\d(?<![\w.,-]\d)\d{0,5}[a-z]?(?:-\d{1,5})?,?[ \t]+"
    rf"(?:[\w'\u2019-]+\.?[ \t]+){{1,4}}{_STREET_SUFFIX}{_DIRECTIONAL}{_UNIT}"
    r",[ \t]*(?:[\w'\u2019-]+[ \t]+){0,2}[\w'\u2019-]+,?[ \t]+"
    rf"(?:{_US_STATES.replace(' ', '|')}|D\.C\.)[ \t]+\d{{5}}(?:-\d{{4}})?\Z",
    re.IGNORECASE,
)
# The same for a British address ("221b baker street, london nw1 6xe"), from its postcode.
UK_POSTCODE = re.compile(r"[a-z]{1,2}\d[a-z\d]?[ \t]*\d[a-z]{2}(?!\w)", re.IGNORECASE)
ADDRESS_TO_POSTCODE = re.compile(
    r"\d(?<![\w.,-]\d)\d{0,4}[a-z]?,?[ \t]+"
    rf"(?:[\w'\u2019-]+\.?[ \t]+){{1,4}}{_STREET_SUFFIX}{_UNIT}"
    r",[ \t]*(?:[\w'\u2019-]+[ \t]+){0,2}[\w'\u2019-]+,?[ \t]+"
    r"[a-z]{1,2}\d[a-z\d]?[ \t]*\d[a-z]{2}\Z",
    re.IGNORECASE,
)
# How far before its ZIP code or postcode an address may start.
ADDRESS_REACH = 160
# A French address in any case is taken only with its postcode and city ("12 rue de la paix,
# 75002 paris"); capitalised, the street alone is enough.
_ADDRESS_FR_ANY_CASE = (
    r"(?:bis[ \t]|ter[ \t])?(?i:rue|avenue|boulevard|bd|place|chemin|allée|impasse|quai|route)[ \t]+"
    r"(?:[\w'\u2019-]+[ \t]+){0,4}?[\w'\u2019-]+,?[ \t]+\d{5}[ \t]+[\w'\u2019-]+"
)
_ADDRESS_FR = (
    r"(?:bis[ \t]|ter[ \t])?(?i:rue|avenue|boulevard|bd|place|chemin|allée|impasse|quai|route)[ \t]+"
    rf"{_FRENCH_LINK}{_CAPITALISED}(?:[ \t]+{_FRENCH_LINK}{_CAPITALISED}){{0,3}}"
    rf"(?:,?[ \t]+\d{{5}}[ \t]+{_CAPITALISED}(?:[ \t-]{_CAPITALISED}){{0,2}})?"
)


def _starts(first: str, not_after: str = r"\w") -> str:
    """`first` (one character or class), not preceded by `not_after`. The lookbehind comes after
    the first character so that the alternative's first operation is a plain character test,
    which the regex engine checks without entering the alternative."""
    return f"{first}(?<!{not_after}{first})"


# (kind, pattern). A pattern holds at most one capturing group: the part that is PII, when that is
# not the whole match. Order matters where alternatives can start at the same character: the first
# that matches wins, so dates and prices come before numbers.
_ANCHORED_ALTERNATIVES = (
    ("ipv4", _starts(r"\d", r"[\w.]") + r"\d{0,2}(?:\.\d{1,3}){3}(?!\w|\.\d)"),
    (
        "skip_date",
        _starts(r"\d", r"[\w.]")
        + r"(?:\d{3}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
        r"|\d?[/.\-]\d{1,2}[/.\-](?:\d{4}|\d{2})|\d{3}-\d{1,2}-\d{1,2}|\d?:\d{2}(?::\d{2})?)(?![\w/]|[.\-]\d)",
    ),
    ("skip_price", r"[$€£¥][ \t]?\d[\d,.']*"),
    (
        "skip_price",
        _starts(r"\d", r"[\w.]")
        + r"\d{0,2}(?:[ ,.'\u2019]\d{3})+(?:[.,]\d{1,2})?[ \t]?(?:€|EUR|USD|GBP|CHF|\$)",
    ),
    (
        "address",
        _starts(r"\d", r"[\w.,-]")
        + r"\d{0,4}[A-Za-z]?(?:-\d{1,5})?,?[ \t]+"
        + rf"(?:{_ADDRESS_US_UK}|{_ADDRESS_FR}|{_ADDRESS_FR_ANY_CASE})",
    ),
    (
        "email",
        _starts("[A-Za-z0-9]", r"[\w.+%'-]")
        + r"[\w.+%'-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])",
    ),
    ("secret", _starts("s", r"[\w-]") + r"k_(?:live|test)_[0-9A-Za-z]{10,128}(?![\w-])"),
    ("secret", _starts("[rp]", r"[\w-]") + r"k_(?:live|test)_[0-9A-Za-z]{10,128}(?![\w-])"),
    (
        "secret",
        _starts("g", r"[\w-]") + r"(?:h[pousr]_[0-9A-Za-z]{20,255}|ithub_pat_[0-9A-Za-z_]{20,255})(?![\w-])",
    ),
    ("secret", _starts("A", r"[\w-]") + r"(?:KIA|SIA)[0-9A-Z]{16}(?![\w-])"),
    ("secret", _starts("A", r"[\w-]") + r"Iza[0-9A-Za-z_-]{35}(?![\w-])"),
    ("secret", _starts("x", r"[\w-]") + r"ox[abposr]-[0-9A-Za-z-]{10,250}(?![\w-])"),
    (
        "secret",
        _starts("e", r"[\w-]") + r"yJ[0-9A-Za-z_-]{8,}\.eyJ[0-9A-Za-z_-]{8,}\.[0-9A-Za-z_-]{8,}(?![\w-])",
    ),
    ("iban", _starts("[A-Z]") + r"[A-Z]\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?\b"),
    (
        "address",
        _starts("[A-ZÄÖÜ]") + r"[a-zäöüß]+(?:straße|strasse|str\.|weg|allee|platz|gasse|ring|damm|ufer)"
        r"[ \t]+\d{1,4}[a-z]?\b(?:,?[ \t]+\d{5}[ \t]+[A-ZÄÖÜ][a-zäöüß]+)?",
    ),
    (
        "ipv6",
        _starts("[0-9A-Fa-f:]", r"[\w:.]") + r"[0-9A-Fa-f]{0,3}:(?:[0-9A-Fa-f]{0,4}:){1,6}"
        r"(?:[0-9A-Fa-f]{1,4}|\d{1,3}(?:\.\d{1,3}){3})?(?![\w:])",
    ),
    (
        "ipv6",
        _starts(":", r"[\w:.]")
        + r":(?:[0-9A-Fa-f]{1,4}(?::[0-9A-Fa-f]{1,4}){0,6}(?:\.\d{1,3}){0,3})?(?![\w:])",
    ),
    (
        "number",
        _starts(r"[+(\d]", r"[\w@/.+\#$€£-]") + r"\(?\d?(?:[ \t.\-/]{0,2}\(?\d\)?){6,22}(?![\w@]|[.\-/]\d)",
    ),
    ("token", _starts(r"[A-Za-z0-9_+/-]", r"[\w/+.-]") + r"[A-Za-z0-9_+/-]{23,511}={0,2}(?![\w/+=.-])"),
)


# Kinds found after a label, tried where `LABEL_WORDS` occur (lower case).
_LABELLED_ALTERNATIVES = (
    ("bearer", _starts("[Bb]") + r"(?i:earer)[ \t]+([0-9A-Za-z._~+/=-]{12,})"),
    (
        "labelled_secret",
        _starts("[PpAaSsTt]")
        + r"(?i:(?<=p)assword|(?<=p)asswd|(?<=p)wd|(?<=a)pi[_ -]?key|(?<=a)ccess[_ -]?token"
        r"|(?<=a)uth[_ -]?token|(?<=s)ecret(?:[_ -]?key)?|(?<=t)oken)"
        r"[\"']?[ \t]*[:=][ \t]*[\"']?([^\s\"',;]{6,200})",
    ),
    (
        "dob",
        _starts("[DdBb]")
        + r"(?i:(?<=d)ob|(?<=d)\.o\.b\.?|(?<=d)ate[ \t]of[ \t]birth|(?<=b)irth[ \t]?date|(?<=b)irthday"
        rf"|(?<=b)orn(?:[ \t]on)?)[ \t]*[:=\-]?[ \t]*({_DATE})",
    ),
    (
        "labelled_ssn",
        _starts("[Ss]") + r"(?i:sn|ocial[ \t]security(?:[ \t]number)?)[ \t]*(?i:\#|no\.?|number)?[ \t]*[:\#]?"
        r"[ \t]*(\d{3}[- ]?\d{2}[- ]?\d{4})(?!\d)",
    ),
)
LABEL_WORDS = (
    "bearer",
    "password",
    "passwd",
    "pwd",
    "api",
    "access",
    "auth",
    "secret",
    "token",
    "dob",
    "d.o.b",
    "date of birth",
    "birth",
    "born",
    "ssn",
    "social security",
)


def _compile(
    alternatives: tuple[tuple[str, str], ...],
) -> tuple[re.Pattern, dict[int, tuple[str, int | None]]]:
    """One alternation; an empty group closes each alternative, so `match.lastindex` says which
    one matched without a named group at its start (which would make the engine enter every
    alternative at every position instead of testing its first character)."""
    parts, kinds, groups = [], {}, 0
    for kind, pattern in alternatives:
        inner = re.compile(pattern).groups
        value_group = groups + 1 if inner else None
        groups += inner + 1
        kinds[groups] = (kind, value_group)
        parts.append(f"{pattern}()")
    return re.compile("|".join(parts)), kinds


ANCHORED, ANCHORED_KINDS = _compile(_ANCHORED_ALTERNATIVES)
LABELLED, LABELLED_KINDS = _compile(_LABELLED_ALTERNATIVES)
# Where the anchored scan stops: an "@", or the first digit of a run that is not plainly harmless.
# The engine itself passes over small numbers in prose ("step 3 of 12", "4th", "30s": up to four
# digits standing alone, followed by punctuation, a lower-case word or the end, not after a price
# sign or a German street name; "12 Main St", "12 rue de la Paix", "415 555 0123", "221B" are
# kept), and returns ISO dates, times, prices, versions ("v2.10.3", "2026.11.30"), "#123456",
# "p_12345" and "1,234,567" in one piece (any group but
# `ANCHOR_KEEP`) so that the scan jumps over them. The pattern starts with a character class, so
# the engine tests other characters without entering it.
_SMALL_NUMBER = (
    r"(?<![^\s(]\d)(?<!(?:ße|se|r\.|eg|ee|tz|ng|mm)[ \t]\d)(?<![$€£¥][ \t]\d)\d{0,3}"
    r"(?:[,;!?%]|\.(?!\d)|[a-z]|$|[ \t]+(?:[KMGT]B|USD|EUR|GBP)\b|[ \t\n]+(?![\d(+$€£¥]|[A-ZÀ-ÝÄÖÜ]"
    r"|(?i:rue|avenue|boulevard|bd|place|chemin|allée|impasse|quai|route|bis|ter)\b))"
)
ANCHOR = re.compile(
    r"[\d@$€£¥\#](?:"
    r"(?<=[$€£¥])[ \t]?\d[\d,.']*()"
    r"|(?<=\#)\d+()"
    r"|(?<![^\s(]\d)(?:\d{3}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"
    r"|\d?:\d{2}(?::\d{2})?|\d{0,2}(?:,\d{3})+(?:\.\d+)?)(?![\w/:,-]|\.\d)()"
    r"|(?<![^\svV(]\d)\d{0,3}\.\d{1,2}\.\d{1,3}(?:-[\w.]+)?(?![\w-]|\.\d)()"
    r"|(?<=[a-z]_)\d+(?![\w-])()"
    rf"|(?<=[\d@])(?<!\d\d)(?!(?<=\d){_SMALL_NUMBER})\d*(?P<anchor>))"
)
ANCHOR_KEEP = ANCHOR.groupindex["anchor"]
# Punctuation inside a word after which a candidate may start ("tel:+1...", "mailto:a@b.c").
PUNCTUATION = re.compile(r"[^\w\s]")
