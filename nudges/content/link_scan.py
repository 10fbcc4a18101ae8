"""Every piece of a text that a mail client or a browser would turn into a link, and where it goes.

A check that looks only for "https://" and "www." lets "Go to secure-login-check.com/unlock"
through, and every mail client makes that a link. `links_in` finds, after `normalised` has undone
the usual disguises:

* URLs with any scheme ("https://", "ftp://", "hxxps://" once refanged), and protocol-relative
  "//host" links;
* bare domains ending in any public suffix of the Public Suffix List (tldextract's bundled
  snapshot: no network at run time), IDN and punycode ("xn--") domains included, and domains
  whose last label only looks like a suffix ("example.сом" in Cyrillic letters);
* e-mail addresses (mail clients make them mailto: links) and IPv4 addresses;
* the same split by zero-width or other invisible characters (U+200B...), written with
  full-width or ideographic dots, or defanged: "[.]", "(dot)", "[:]", "hxxp", "example . com".

What is refused is decided by the caller from each link's host (`host_allowed`). Names of files
and products whose last part is a top-level domain ("setup.py", "readme.md", "ASP.NET",
"file.zip") are links by this rule: mail clients link them too, so refusing them is the safe
side; "Node.js", "file.txt", "e.g.", "version 2.5" are not.
"""

import ipaddress
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import urlsplit

import tldextract
from confusable_homoglyphs import confusables

# The bundled snapshot of the Public Suffix List, ICANN section: never fetched, never cached on disk.
_SUFFIXES = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None, fallback_to_snapshot=True)

URL = "a URL"
PROTOCOL_RELATIVE = "a protocol-relative link"
EMAIL = "an e-mail address"
IP_ADDRESS = "an IP address"
WWW = "a www. address"
BARE_DOMAIN = "a bare domain"
LOOK_ALIKE = "a look-alike domain"
INTERNATIONAL = "an internationalised domain"

# Suffixes a reader completes even with a space after the dot ("secure-login-check. com"); after
# other words a lower-case word following ". " is prose ("approx. one", "vs. live").
_COMMON_SUFFIXES = frozenset(
    {
        "com", "net", "org", "io", "co", "info", "biz", "xyz", "app", "dev", "me", "ly",
        "top", "online", "site", "shop", "ru", "cn", "de", "uk", "us", "eu", "fr",
    }
)  # fmt: skip
_TRAILING = ".,;:!?)]}'\"*_~"

_SCHEME_DISGUISE = re.compile(r"(?i)\bh(?:xx|\*\*|tt|xt|tx)p(s?)(?=\s*(?:\[:\]|:|\[://\]))")
_COLON_DISGUISE = re.compile(r"(?i)\[\s*(:|colon)\s*\]|\(\s*(:|colon)\s*\)")
_DOT_DISGUISE = re.compile(
    r"(?i)\s*(?:\[\s*(?:\.|dot)\s*\]|\(\s*(?:\.|dot)\s*\)|\{\s*(?:\.|dot)\s*\}|<\s*dot\s*>)\s*"
)
_AT_DISGUISE = re.compile(r"(?i)\s*(?:\[\s*(?:@|at)\s*\]|\(\s*(?:@|at)\s*\)|\{\s*(?:@|at)\s*\})\s*")
_SPACED_DOT = re.compile(r"(?i)(?<=[\w-])(?:\s*\.\s+|\s+\.\s*|\s+dot\s+)(?=[\w-])")
_WORD_BEFORE = re.compile(r"[\w-]+\Z")
_WORD_AFTER = re.compile(r"[\w-]+")

_HOST = r"(?:[\w-]+\.)+[\w-]+"
_LINK_END = r"[^\s<>\"'`]*"
_CANDIDATE = re.compile(
    rf"(?P<url>\b[a-z][a-z0-9+.\-]{{1,15}}://{_LINK_END})"
    rf"|(?P<relative>(?<![\w:/])//{_HOST}{_LINK_END})"
    rf"|(?P<email>(?<![\w.+%'\-])[\w.+%'\-]+@{_HOST})"
    rf"|(?P<host>(?<![\w.@\-]){_HOST}(?::\d{{1,5}})?(?:/{_LINK_END})?)",
    re.IGNORECASE,
)
_IPV4 = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}")


@dataclass(frozen=True)
class FoundLink:
    text: str  # as normalised: refanged, without invisible characters
    host: str  # lower case ("" when the link names none, as "file:///etc/passwd")
    kind: str  # what it is, for the reason recorded (never the text: it may be an address)


def normalised(text: str) -> str:
    """The text as a reader or a mail client sees it: compatibility forms folded (full-width
    letters and dots), invisible format characters removed, defanged links refanged."""
    text = unicodedata.normalize("NFKC", text or "").replace("\u3002", ".")
    text = "".join(character for character in text if unicodedata.category(character) != "Cf")
    text = _SCHEME_DISGUISE.sub(r"http\1", text)
    text = _COLON_DISGUISE.sub(":", text)
    text = _DOT_DISGUISE.sub(".", text)
    text = _AT_DISGUISE.sub("@", text)
    return _SPACED_DOT.sub(_joined_if_domain, text)


def _joined_if_domain(match: re.Match) -> str:
    """ "secure-login-check . com" -> "secure-login-check.com" when what follows is a suffix; a
    sentence's full stop followed by a word is kept."""
    gap, text = match.group(), match.string
    left = _WORD_BEFORE.search(text, 0, match.start()).group()
    right = _WORD_AFTER.match(text, match.end()).group()
    if not is_public_suffix(right):
        return gap
    if gap.strip().lower() == "dot" or gap[0].isspace():
        domain_like = right.islower() or any(character == "-" or character.isdigit() for character in left)
        return "." if domain_like else gap
    return "." if right in _COMMON_SUFFIXES else gap


def is_public_suffix(label: str) -> bool:
    """Whether `label` alone is a top-level suffix ("com", "zip", "рф", "xn--p1ai")."""
    return _SUFFIXES(f"x.{label.lower()}").suffix == label.lower()


@lru_cache(maxsize=4096)
def _latin_look_alike(character: str) -> str:
    for confusable in confusables.is_confusable(character, preferred_aliases=["latin"]) or []:
        for homoglyph in confusable["homoglyphs"]:
            if len(homoglyph["c"]) == 1 and homoglyph["c"].isascii() and homoglyph["c"].isalnum():
                return homoglyph["c"].lower()
    return character


def _domain_kind(host: str) -> str | None:
    if _IPV4.fullmatch(host):
        return IP_ADDRESS if all(int(part) <= 255 for part in host.split(".")) else None
    if host.startswith("www."):
        return WWW
    parts = _SUFFIXES(host)
    if parts.suffix and parts.domain:
        if host.isascii():
            return BARE_DOMAIN
        return LOOK_ALIKE if any(map(confusables.is_mixed_script, host.split("."))) else INTERNATIONAL
    # A last label in other letters that reads as a suffix ("example.сом"): no browser resolves
    # it, but a reader types what they see.
    last = host.rsplit(".", 1)[-1]
    if last.isascii():
        return None
    read_as = "".join(_latin_look_alike(character) for character in last)
    after_latin = any(label.isascii() and label.isalpha() for label in host.split(".")[:-1])
    if is_public_suffix(read_as) or read_as.isascii() or after_latin or confusables.is_mixed_script(last):
        return LOOK_ALIKE
    return None


def _host_of(url: str) -> str:
    try:
        return (urlsplit(url).hostname or "").lower()
    except ValueError:  # an invalid [IPv6] part
        return ""


def _found(match: re.Match) -> FoundLink | None:
    text = match.group().rstrip(_TRAILING)
    kind = match.lastgroup
    if kind == "url":
        return FoundLink(text=text, host=_host_of(text), kind=URL)
    if kind == "relative":
        return FoundLink(text=text, host=_host_of("http:" + text), kind=PROTOCOL_RELATIVE)
    if kind == "email":
        host = text.rsplit("@", 1)[1].lower()
        return FoundLink(text=text, host=host, kind=EMAIL) if _domain_kind(host) else None
    host = re.split(r"[:/]", text, maxsplit=1)[0].lower()
    domain_kind = _domain_kind(host)
    return FoundLink(text=text, host=host, kind=domain_kind) if domain_kind else None


def links_in(text: str) -> list[FoundLink]:
    """Each link a mail client or a reader would make of `text`, in order."""
    return [link for match in _CANDIDATE.finditer(normalised(text)) if (link := _found(match))]


def ascii_host(host: str) -> str:
    """The host as DNS sees it: IDN labels in punycode, so that "пример.рф" and its
    "xn--" form are one host."""
    host = unicodedata.normalize("NFKC", host).lower().strip(".")
    try:
        return host.encode("idna").decode("ascii")
    except UnicodeError:
        return host


def host_allowed(host: str, domains: Iterable[str]) -> bool:
    """`host` is one of `domains` or a subdomain of one; a look-alike never is."""
    if not host:
        return False
    host = ascii_host(host)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return host in {ascii_host(domain) for domain in domains if domain}
    for domain in domains:
        domain = ascii_host(str(domain).strip().removeprefix("*."))
        if domain and (host == domain or host.endswith("." + domain)):
            return True
    return False
