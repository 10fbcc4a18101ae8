"""Text as it is written inside links and HTML, decoded for the PII detector, with a map back.

An e-mail address inside a link is written "name%40example.org", an address in a query string
"1600+pennsylvania+avenue", in HTML "jane&#64;example.org", and a URL parameter may carry it in
base64. The detector (`guardrails.pii.detector`) scans the text as written, then each window of it that
holds such an encoding once more, decoded (`encoded_windows`, `decode`); the spans found in the
decoded text are mapped back to the written one (`Decoded.original_span`), so that redaction
removes the encoded characters themselves. Text without any encoding costs one regex search.

Decoded: percent-encoding (runs of %XX as UTF-8, twice encoded too), "+" for a space inside URL
parameter values, HTML character references (named, decimal, hexadecimal), and a URL parameter
value that is base64 (standard or URL-safe) of printable UTF-8 text.
"""

import base64
import binascii
import html
import re
from bisect import bisect_right
from dataclasses import dataclass
from urllib.parse import unquote

# Where an encoding may be: a %XX, an HTML character reference, a URL parameter ("?email=").
_REFERENCE = r"&(?:#\d{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});"
# One character class first: the engine skips other characters without entering the pattern.
_HINT = re.compile(
    r"[%&?](?:(?<=%)[0-9A-Fa-f]{2}|(?<=&)(?:#\d{1,7}|#[xX][0-9A-Fa-f]{1,6}|[A-Za-z][A-Za-z0-9]{1,31});"
    r"|(?<=[?&])[^\s?&#=]{1,64}=\S)"
)
# What is decoded in place: a run of %XX ("%2540" encoded twice is one unit), a reference.
_UNIT = re.compile(rf"(?:%(?:25)*[0-9A-Fa-f]{{2}})+|{_REFERENCE}")
_PARAMETER_VALUE = re.compile(r"[?&][^\s?&#=]{1,64}=([^\s&#]+)")
_BASE64 = re.compile(r"[A-Za-z0-9+/_-]{12,}={0,2}")
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
# Characters either side of an encoding that are decoded and scanned with it, so that an address
# whose comma is "%2C" is read whole; a window ends at whitespace.
WINDOW = 80


def has_encoding(text: str) -> bool:
    return _HINT.search(text) is not None


def encoded_windows(text: str) -> list[tuple[int, int]]:
    """(start, end) of the parts of `text` around its encodings, merged, cut at whitespace."""
    windows: list[tuple[int, int]] = []
    for hint in _HINT.finditer(text):
        low, high = max(0, hint.start() - WINDOW), min(len(text), hint.end() + WINDOW)
        if low > 0:
            space = max(text.rfind(" ", low, hint.start()), text.rfind("\n", low, hint.start()))
            low = space + 1 if space >= 0 else low
        if high < len(text):
            ends = [text.find(" ", hint.end(), high), text.find("\n", hint.end(), high)]
            high = min((found for found in ends if found >= 0), default=high)
        if windows and low <= windows[-1][1]:
            windows[-1] = (windows[-1][0], max(windows[-1][1], high))
        else:
            windows.append((low, high))
    return windows


@dataclass(slots=True, frozen=True)
class Decoded:
    """The decoded text, in pieces: `starts[i]` is where piece i begins in the decoded text, and
    `pieces[i]` its (start, end) in the written text and whether it was copied as it was (then a
    position maps one to one; a decoded piece maps whole)."""

    text: str
    starts: tuple[int, ...]
    pieces: tuple[tuple[int, int, bool], ...]

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        first = bisect_right(self.starts, start) - 1
        written_start, _, verbatim = self.pieces[first]
        mapped_start = written_start + (start - self.starts[first]) if verbatim else written_start
        last = bisect_right(self.starts, end - 1) - 1
        written_start, written_end, verbatim = self.pieces[last]
        mapped_end = written_start + (end - self.starts[last]) if verbatim else written_end
        return mapped_start, mapped_end


def _percent_decoded(run: str) -> str:
    decoded = unquote(run)
    for _ in range(2):  # "%2540" was encoded twice
        if not _PERCENT.search(decoded):
            break
        decoded = unquote(decoded)
    return decoded


def _unit_decoded(unit: str) -> str:
    return _percent_decoded(unit) if unit.startswith("%") else html.unescape(unit)


def _base64_text(value: str) -> str | None:
    """The text a URL parameter holds in base64, when it is printable UTF-8; else None."""
    value = _percent_decoded(value) if "%" in value else value
    if not _BASE64.fullmatch(value):
        return None
    padded = value.rstrip("=")
    padded += "=" * (-len(padded) % 4)
    altchars = b"-_" if "-" in padded or "_" in padded else None
    try:
        text = base64.b64decode(padded, altchars=altchars, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    return text if len(text) >= 4 and text.isprintable() else None


def decode(text: str) -> Decoded | None:
    """`text` decoded, with its map back; None when nothing in it is encoded."""
    replacements: list[tuple[int, int, str]] = []
    plus_spaces: list[tuple[int, int]] = []
    for parameter in _PARAMETER_VALUE.finditer(text):
        start, end = parameter.span(1)
        if (decoded := _base64_text(text[start:end])) is not None:
            replacements.append((start, end, decoded))
        elif "+" in text[start:end]:
            plus_spaces.append((start, end))
    whole_values = [(start, end) for start, end, _ in replacements]
    for unit in _UNIT.finditer(text):
        if any(start <= unit.start() < end for start, end in whole_values):
            continue
        decoded = _unit_decoded(unit.group())
        if decoded != unit.group():
            replacements.append((unit.start(), unit.end(), decoded))
    if not replacements and not plus_spaces:
        return None
    written = text
    for start, end in plus_spaces:  # "+" -> " " keeps every position
        written = written[:start] + written[start:end].replace("+", " ") + written[end:]
    parts: list[str] = []
    starts: list[int] = []
    pieces: list[tuple[int, int, bool]] = []
    position = length = 0
    for start, end, decoded in sorted(replacements):
        for piece_start, piece_end, piece_text, verbatim in (
            (position, start, written[position:start], True),
            (start, end, decoded, False),
        ):
            if piece_text:
                starts.append(length)
                pieces.append((piece_start, piece_end, verbatim))
                parts.append(piece_text)
                length += len(piece_text)
        position = end
    if position < len(written):
        starts.append(length)
        pieces.append((position, len(written), True))
        parts.append(written[position:])
    return Decoded(text="".join(parts), starts=tuple(starts), pieces=tuple(pieces))
