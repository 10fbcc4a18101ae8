"""PII as it is written inside links and HTML, for the labelled corpus (tests/guardrails/pii_corpus.py).

Each function takes a plain value and returns it as found in the wild: an e-mail address
percent-encoded in a URL parameter (once or twice), in HTML character references, in base64 in a
URL parameter; a US or British address in lower or upper case, with the quadrant ("nw"), or
form-encoded in a query string ("+" for spaces, "%2C" for commas). The whole written form is the
expected span: redaction must remove the encoded text itself.
"""

import base64
import random
from urllib.parse import quote, quote_plus

QUADRANTS = ["", " nw", " ne", " sw", " se"]
CITIES_US = [("washington", "dc"), ("san francisco", "ca"), ("austin", "tx"), ("new york", "ny")]
STREETS_UK = ["baker street", "victoria road", "church lane", "abbey road"]
POSTCODES_UK = ["nw1 6xe", "sw1a 1aa", "ec1a 1bb", "m1 1ae"]


def url_email(rng: random.Random, email: str) -> str:
    once = quote(email, safe="")
    return quote(once, safe="") if rng.random() < 0.25 else once


def html_email(rng: random.Random, email: str) -> str:
    at = rng.choice(["&#64;", "&#x40;", "&commat;"])
    local, domain = email.split("@")
    return local + at + domain.replace(".", rng.choice(["&#46;", "&period;", "."]))


def base64_email(rng: random.Random, email: str) -> str:
    encoded = base64.urlsafe_b64encode(email.encode()).decode()
    return encoded.rstrip("=") if rng.random() < 0.5 else quote(encoded, safe="")


def address_any_case(rng: random.Random, streets: list[str], suffixes: list[str]) -> str:
    """A whole address, street to ZIP code or postcode, in lower (or upper) case."""
    if rng.random() < 0.3:
        house = f"{rng.randint(1, 240)}{rng.choice(['', 'b'])}"
        address = f"{house} {rng.choice(STREETS_UK)}, london {rng.choice(POSTCODES_UK)}"
    else:
        city, state = rng.choice(CITIES_US)
        street = f"{rng.choice(streets)} {rng.choice(suffixes)}".lower()
        zip_code = f"{rng.randint(10000, 99999)}" + rng.choice(["", f"-{rng.randint(1000, 9999)}"])
        comma = rng.choice([",", ""])
        address = f"{rng.randint(1, 2400)} {street}{rng.choice(QUADRANTS)}, {city}{comma} {state} {zip_code}"
    return address.upper() if rng.random() < 0.15 else address


def form_address(rng: random.Random, streets: list[str], suffixes: list[str]) -> str:
    """An address form-encoded in a query string: "1600+pennsylvania+avenue+nw%2C+washington+dc+20500"."""
    return quote_plus(address_any_case(rng, streets, suffixes))


# Encoded text that holds no PII: left as it is.
NEGATIVES = [
    "Search /help?q=onboarding+checklist&page=2 for more",
    "Progress 100%25 after step 3 (%2B 2 bonus)",
    "Tom &amp; Jerry finished step 3 &mdash; nice",
    "Open /r?step=c3RlcF9jb21wbGV0ZWQ and continue",
    "It took 5 minutes down the road, in 20500 ways",
    "Upgraded 12 seats way over plan, in 20500",
    "Export /reports?from=2026-11-01&to=2026-11-30&format=csv",
]
