"""A labelled corpus for the PII detector, and the scoring that tests and `bench/pii.py` share.

`build_corpus()` generates a few hundred realistic items deterministically (seeded random):
support-style notes, form answers and step titles (some with PII written as links and HTML
write it: percent-encoded, in character references, in base64, form-encoded, and addresses in
any case: `pii_corpus_encoded`); nudge contexts as nested JSON; Segment event
properties; the end user's own contact values in other case; and hand-written tricky negatives
(numbers that fail Luhn, IBANs with a bad checksum, versions, prices, unlabelled dates, order
ids). Each item carries its expected findings: the type and the exact span of the substring in
the string at `path`, or only the path when a PII-named key's whole value is replaced.

`score(corpus, redact)` matches findings to expectations (same type and path, overlapping span)
and returns per-type counts; `Scores.recall(type)` and `.precision(type)` read them.
"""

import random
import string
import unicodedata
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from stdnum import iban as iban_numbers
from stdnum import luhn

from tests.guardrails import pii_corpus_encoded as encoded

SEED = 20_261_202
CONTACT = "CONTACT"  # the scoring bucket of the user's own contact values, whatever their type


@dataclass(frozen=True, slots=True)
class Expected:
    type: str
    path: str
    start: int | None = None
    end: int | None = None
    contact: bool = False


@dataclass(frozen=True, slots=True)
class Item:
    value: Any
    expected: tuple[Expected, ...]
    source: str
    region: str = "US"
    contact: dict | None = None


# --- Values -------------------------------------------------------------------------------------

FIRST_NAMES = [
    "Amelia", "Oliver", "Sofia", "Mateo", "Priya", "Arjun", "Chloé", "Lucas", "Hannah", "Jonas",
    "Aisha", "Kenji", "Zoe", "Liam", "Fatima", "Noah", "Élodie", "Sven", "Ingrid", "Rahul",
    "Margaux", "Tobias", "Yara", "Dmitri", "Siobhan", "Tomasz", "Naledi", "Kwame", "Lucía", "Anaïs",
]  # fmt: skip
LAST_NAMES = [
    "Okafor", "Lindqvist", "Fernández", "Nakamura", "Brennan", "Dubois", "Schneider", "Kowalski",
    "Patel", "Haddad", "Moreau", "Van der Berg", "O'Sullivan", "Rossi", "Eriksen", "Mensah",
    "Castellanos", "Iyer", "Delacroix", "Hoffmann", "Gallagher", "Achterberg", "Novak", "Sato",
]  # fmt: skip
DOMAINS = [
    "gmail.com",
    "acme.io",
    "mail.example.co.uk",
    "corp.globex.com",
    "outlook.fr",
    "web.de",
    "initech.dev",
]
STREETS_US = ["Main", "Oak", "Maple", "Cedar Hill", "Washington", "Lake Shore", "Sunset", "Mission"]
SUFFIXES_US = ["Street", "St", "Avenue", "Ave", "Road", "Blvd", "Lane", "Drive", "Way", "Court"]
CITIES_US = [("San Francisco", "CA"), ("Austin", "TX"), ("Portland", "OR"), ("Boston", "MA")]
STREETS_UK = ["Baker Street", "Victoria Road", "Church Lane", "Kings Road", "Abbey Road", "Park Crescent"]
STREETS_FR = ["rue de la Paix", "avenue Victor Hugo", "boulevard Saint-Germain", "rue du Faubourg Montmartre"]
STREETS_DE = ["Hauptstraße", "Bahnhofstraße", "Lindenallee", "Goetheweg", "Marktplatz", "Schillerstr."]
CITIES_FR = [("75002", "Paris"), ("69003", "Lyon"), ("33000", "Bordeaux")]
CITIES_DE = [("10115", "Berlin"), ("80331", "München"), ("50667", "Köln")]
POSTCODES_UK = ["NW1 6XE", "SW1A 1AA", "EC1A 1BB", "M1 1AE"]
MONTHS = ["January", "March", "April", "June", "July", "September", "October", "December"]
STEP_NAMES = ["Connect Slack", "Invite your team", "Import contacts", "Create a project", "Set up billing"]
PHONE_REGIONS = ["US", "GB", "FR", "DE", "IN"]


def _email(rng: random.Random, first: str, last: str) -> str:
    local = rng.choice(
        [
            f"{first}.{last}",
            f"{first[0]}{last}",
            f"{first}{rng.randint(1, 99)}",
            f"{first}.{last}+{rng.choice(['news', 'trial', 'work'])}",
            f"{last}_{first}",
        ]
    )
    # Accents dropped as people do in addresses: "Élodie" -> "elodie".
    local = unicodedata.normalize("NFKD", local)
    local = "".join(character for character in local if character.isascii() and character not in " '")
    address = f"{local}@{rng.choice(DOMAINS)}".lower()
    return address.upper() if rng.random() < 0.1 else address


def _phone_number(rng: random.Random, region: str) -> phonenumbers.PhoneNumber:
    kind = rng.choice([phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE])
    example = phonenumbers.example_number_for_type(region, kind)
    national = str(example.national_number)
    while True:
        keep = max(2, len(national) - 6)
        candidate = national[:keep] + "".join(rng.choice(string.digits) for _ in national[keep:])
        number = phonenumbers.parse("+" + str(example.country_code) + candidate)
        if phonenumbers.is_valid_number(number):
            return number


def _phone(rng: random.Random, region: str) -> str:
    """A valid number of the region, written as people write it there or internationally."""
    number = _phone_number(rng, region)
    national = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    international = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    digits = "".join(character for character in national if character.isdigit())
    styles = [national, international, e164, "00" + e164[1:]]
    if region == "US":
        area, exchange, line = digits[-10:-7], digits[-7:-4], digits[-4:]
        styles += [f"{area}-{exchange}-{line}", f"{area}.{exchange}.{line}", f"1-{area}-{exchange}-{line}"]
        styles += [f"+1 {area} {exchange} {line}", f"{area}{exchange}{line}"]
    elif region == "FR":
        styles += [".".join(digits[index : index + 2] for index in range(0, 10, 2)), digits]
    elif region == "GB":
        styles += [international.replace("+44 ", "+44 (0)"), digits[:5] + "-" + digits[5:]]
    elif region == "DE":
        styles += [national.replace(" ", "/", 1), international.replace(" ", "-")]
    elif region == "IN":
        styles += [national.lstrip("0"), "+91-" + digits.lstrip("0")]
    return rng.choice(styles)


def _card(rng: random.Random) -> str:
    network = rng.choice(["visa", "mastercard", "mastercard2", "amex", "discover"])
    prefix, length = {
        "visa": ("4", 16),
        "mastercard": (str(rng.randint(51, 55)), 16),
        "mastercard2": (str(rng.randint(2221, 2720)), 16),
        "amex": (rng.choice(["34", "37"]), 15),
        "discover": ("6011", 16),
    }[network]
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    digits = body + luhn.calc_check_digit(body)
    separator = rng.choice(["", " ", "-"])
    if not separator:
        return digits
    groups = (
        [digits[:4], digits[4:10], digits[10:]]
        if length == 15
        else [digits[i : i + 4] for i in range(0, 16, 4)]
    )
    return separator.join(groups)


def _bad_card(rng: random.Random) -> str:
    card = _card(rng).replace(" ", "").replace("-", "")
    last = str((int(card[-1]) + rng.randint(1, 9)) % 10)
    return " ".join((card[:-1] + last)[index : index + 4] for index in range(0, len(card), 4))


# Country -> its BBAN after the check digits: digits ("9"), letters ("A"), in order.
_IBAN_SHAPES = {"DE": "9" * 18, "GB": "AAAA" + "9" * 14, "NL": "AAAA" + "9" * 10, "AT": "9" * 16}
_BANK_CODES = {"GB": ["NWBK", "BARC", "MIDL"], "NL": ["ABNA", "INGB", "RABO"]}


def _iban(rng: random.Random, valid: bool = True) -> str:
    country = rng.choice(list(_IBAN_SHAPES))
    shape = _IBAN_SHAPES[country]
    bank = rng.choice(_BANK_CODES.get(country, [""]))
    bban = bank + "".join(rng.choice(string.digits) for _ in shape[len(bank) :])
    check = iban_numbers.calc_check_digits(f"{country}00{bban}")
    if not valid:
        check = f"{(int(check) + rng.randint(1, 50)) % 97 + 2:02d}"
    compact = f"{country}{check}{bban}"
    if rng.random() < 0.5:
        return compact
    return " ".join(compact[index : index + 4] for index in range(0, len(compact), 4))


def _ssn(rng: random.Random) -> str:
    area = rng.choice([rng.randint(1, 665), rng.randint(667, 899)])
    separator = rng.choice(["-", "-", " "])
    return f"{area:03d}{separator}{rng.randint(1, 99):02d}{separator}{rng.randint(1, 9999):04d}"


def _ip(rng: random.Random) -> str:
    if rng.random() < 0.7:
        first = rng.choice([10, 172, 192, 81, 203, 54, 8])
        return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    groups = [f"{rng.randint(0, 0xFFFF):x}" for _ in range(4)]
    return rng.choice([f"2001:db8:{groups[0]}::{groups[1]}", "fe80::" + ":".join(groups), "::1"])


def _token(rng: random.Random, length: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    while True:
        token = "".join(rng.choice(alphabet) for _ in range(length))
        if sum(character.isdigit() for character in token) >= 3:
            return token


def _secret(rng: random.Random) -> str:
    return rng.choice(
        [
            "sk_live_" + _token(rng, 24),
            "sk_test_" + _token(rng, 24),
            "ghp_" + _token(rng, 36),
            "AKIA" + _token(rng, 16, string.ascii_uppercase + string.digits),
            "xoxb-" + "-".join(str(rng.randint(10**11, 10**12)) for _ in range(2)) + "-" + _token(rng, 24),
            _token(rng, 40),
        ]
    )


def _dob(rng: random.Random) -> tuple[str, str]:
    """A label and the date after it."""
    year, month, day = rng.randint(1950, 2005), rng.randint(1, 12), rng.randint(1, 28)
    date = rng.choice(
        [
            f"{year}-{month:02d}-{day:02d}",
            f"{month:02d}/{day:02d}/{year}",
            f"{day:02d}.{month:02d}.{year}",
            f"{rng.choice(MONTHS)} {day}, {year}",
            f"{day} {rng.choice(MONTHS)} {year}",
        ]
    )
    label = rng.choice(["DOB: ", "D.O.B. ", "date of birth: ", "Date of Birth - ", "born on ", "Birthday: "])
    return label, date


def _address(rng: random.Random) -> str:
    style = rng.choice(["us", "us_full", "uk", "fr", "de"])
    number = rng.randint(1, 2400)
    if style == "us":
        return f"{number} {rng.choice(STREETS_US)} {rng.choice(SUFFIXES_US)}"
    if style == "us_full":
        city, state = rng.choice(CITIES_US)
        unit = rng.choice(["", f", Apt {rng.randint(1, 30)}", f" Suite {rng.randint(100, 900)}"])
        street = f"{rng.choice(STREETS_US)} {rng.choice(SUFFIXES_US)}"
        return f"{number} {street}{unit}, {city}, {state} {rng.randint(10000, 99999)}"
    if style == "uk":
        house = f"{rng.randint(1, 240)}{rng.choice(['', 'B'])}"
        return f"{house} {rng.choice(STREETS_UK)}, London {rng.choice(POSTCODES_UK)}"
    if style == "fr":
        postcode, city = rng.choice(CITIES_FR)
        return f"{rng.randint(1, 120)} {rng.choice(STREETS_FR)}, {postcode} {city}"
    postcode, city = rng.choice(CITIES_DE)
    return f"{rng.choice(STREETS_DE)} {rng.randint(1, 140)}, {postcode} {city}"


# --- Templates ----------------------------------------------------------------------------------

# Slots: {EMAIL} {PHONE} {CARD} {IBAN} {SSN} {IP} {ADDRESS} {SECRET} {DOB} {BEARER}; plain numbers
# that must survive ({N}, {DATE}, {PRICE}, {ORDER}, {VERSION}) are filled too.
TEXT_TEMPLATES = [
    "Hi, please update my email to {EMAIL}, the old one bounces.",
    "Customer asked us to call back on {PHONE} after {N}pm.",
    "Can you send the invoice to {EMAIL}? Thanks!",
    "My card {CARD} was declined twice on {DATE}, order {ORDER}.",
    "Refund to IBAN {IBAN} please, amount {PRICE}.",
    "User pasted their SSN {SSN} into the support form by mistake.",
    "Login attempts from {IP} were blocked ({N} tries).",
    "Ship the starter kit to {ADDRESS}.",
    "Our key is {SECRET}, why does the API return 401?",
    "curl -H 'Authorization: Bearer {BEARER}' https://api.example.com/v1/projects",
    "Form answer: {DOB}",
    "Reach me at {PHONE} or {EMAIL}, whichever is easier.",
    "Step {N} of 5: verify your phone number ({PHONE}).",
    "Billing contact is {EMAIL}; card ending in 4242, expires 08/27.",
    "New seat for {EMAIL} added on {DATE} (plan v{VERSION}).",
    "Moved office to {ADDRESS}; phone stays {PHONE}.",
    "Webhook from {IP} failed at {DATE} 14:32 with {N} retries.",
    "Paid {PRICE} with {CARD}, receipt sent to {EMAIL}.",
    "Please wire to {IBAN} by {DATE}.",
    "Note from onboarding call: {DOB}, wants SMS reminders at {PHONE}.",
    "Set OPENAI key {SECRET} in settings, then rerun step {N}.",
    "Hello team, it's me again ({EMAIL}). The import stopped at row {N}.",
    "Address on file: {ADDRESS}. Phone: {PHONE}.",
    "Trial extended by {N} days for {EMAIL}.",
    "Fraud check flagged card {CARD} and IP {IP}.",
    "Signed up via https://app.example.com/signup?email={URL_EMAIL}&ref=nudge today.",
    "Clicked https://mail.example.com/r?u={BASE64_EMAIL} from the digest.",
    "Reply went to {HTML_EMAIL} in the HTML part.",
    "Ship the kit to {ADDRESS_ANY_CASE} please.",
    "Map link https://maps.example.com/?q={FORM_ADDRESS}&z=14 was shared.",
    "Form answer: {ADDRESS_ANY_CASE}.",
]
STEP_TITLES = [
    "Call {PHONE} to activate",
    "Verify {EMAIL}",
    "Add card {CARD}",
    "Confirm billing address {ADDRESS}",
]


class _Builder:
    """Concatenates text and PII, remembering where each PII value lands."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.spans: list[tuple[str, int, int, bool]] = []

    def text(self, value: str) -> None:
        self.parts.append(value)
        self.length += len(value)

    def pii(self, kind: str, value: str, *, contact: bool = False) -> None:
        self.spans.append((kind, self.length, self.length + len(value), contact))
        self.text(value)

    def result(self, path: str = "$") -> tuple[str, list[Expected]]:
        expected = [Expected(kind, path, start, end, contact) for kind, start, end, contact in self.spans]
        return "".join(self.parts), expected


class _Person:
    def __init__(self, rng: random.Random, region: str) -> None:
        self.first = rng.choice(FIRST_NAMES)
        self.last = rng.choice(LAST_NAMES)
        self.email = _email(rng, self.first, self.last)
        self.phone = _phone(rng, region)
        number = phonenumbers.parse(self.phone, region)
        self.phone_e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        self.address = _address(rng)

    def contact(self) -> dict:
        return {
            "email": self.email,
            "phone": self.phone_e164,
            "first_name": self.first,
            "last_name": self.last,
            "name": f"{self.first} {self.last}",
            "address": {"line1": self.address, "country": "US"},
        }


_ENCODED_SLOT_TYPES = {
    "URL_EMAIL": "EMAIL",
    "HTML_EMAIL": "EMAIL",
    "BASE64_EMAIL": "EMAIL",
    "ADDRESS_ANY_CASE": "ADDRESS",
    "FORM_ADDRESS": "ADDRESS",
}


def _any_email(rng: random.Random) -> str:
    return _email(rng, rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)).lower()


def _fill(rng: random.Random, template: str, builder: _Builder, region: str) -> None:
    position = 0
    while (open_at := template.find("{", position)) != -1:
        close_at = template.index("}", open_at)
        builder.text(template[position:open_at])
        slot = template[open_at + 1 : close_at]
        if slot == "N":
            builder.text(str(rng.randint(2, 48)))
        elif slot == "DATE":
            builder.text(
                rng.choice([f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}", "March 3", "12/04"])
            )
        elif slot == "PRICE":
            builder.text(
                rng.choice([f"${rng.randint(10, 4000)}.{rng.randint(0, 99):02d}", "€1.299,00", "$1,249"])
            )
        elif slot == "ORDER":
            builder.text(rng.choice([f"#{rng.randint(100000, 999999)}", f"ORD-{rng.randint(10**6, 10**7)}"]))
        elif slot == "VERSION":
            builder.text(f"{rng.randint(1, 4)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}")
        elif slot == "DOB":
            label, date = _dob(rng)
            builder.text(label)
            builder.pii("DOB", date)
        elif slot == "BEARER":
            builder.pii("SECRET", _token(rng, 32, string.ascii_letters + string.digits + "-_"))
        else:
            value = {
                "EMAIL": lambda: _email(rng, rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)),
                "PHONE": lambda: _phone(rng, region),
                "CARD": lambda: _card(rng),
                "IBAN": lambda: _iban(rng),
                "SSN": lambda: _ssn(rng),
                "IP": lambda: _ip(rng),
                "ADDRESS": lambda: _address(rng),
                "SECRET": lambda: _secret(rng),
                "URL_EMAIL": lambda: encoded.url_email(rng, _any_email(rng)),
                "HTML_EMAIL": lambda: encoded.html_email(rng, _any_email(rng)),
                "BASE64_EMAIL": lambda: encoded.base64_email(rng, _any_email(rng)),
                "ADDRESS_ANY_CASE": lambda: encoded.address_any_case(rng, STREETS_US, SUFFIXES_US),
                "FORM_ADDRESS": lambda: encoded.form_address(rng, STREETS_US, SUFFIXES_US),
            }[slot]()
            slot = _ENCODED_SLOT_TYPES.get(slot, slot)
            builder.pii(slot, value)
        position = close_at + 1
    builder.text(template[position:])


def _text_item(rng: random.Random, template: str, source: str) -> Item:
    region = rng.choice(PHONE_REGIONS)
    builder = _Builder()
    _fill(rng, template, builder, region)
    value, expected = builder.result()
    return Item(value=value, expected=tuple(expected), source=source, region=region)


def _contact_text_item(rng: random.Random) -> Item:
    region = rng.choice(PHONE_REGIONS)
    person = _Person(rng, region)
    builder = _Builder()
    name_forms = [
        person.first,
        person.first.upper(),
        person.first.lower(),
        f"{person.first} {person.last}".upper(),
    ]
    builder.text(rng.choice(["Hi ", "Hello ", "Dear ", "Note: "]))
    builder.pii("NAME", rng.choice(name_forms), contact=True)
    builder.text(rng.choice([", welcome back! ", " finished step 3 today. ", " asked about SSO. "]))
    builder.text(rng.choice(["Contact: ", "Reply to ", "Confirmed "]))
    email = rng.choice([person.email, person.email.upper(), person.email.capitalize()])
    builder.pii("EMAIL", email, contact=True)
    builder.text(rng.choice([" or call ", ", mobile ", " / tel: "]))
    builder.pii("PHONE", person.phone, contact=True)
    builder.text(rng.choice([". Surname on the card: ", ". Family name ", ". Signed, "]))
    builder.pii("NAME", rng.choice([person.last, person.last.lower(), person.last.upper()]), contact=True)
    builder.text(". Lives at ")
    builder.pii("ADDRESS", person.address, contact=True)
    builder.text(".")
    value, expected = builder.result()
    return Item(
        value=value, expected=tuple(expected), source="contact text", region=region, contact=person.contact()
    )


def _string_in_json(rng: random.Random, template: str, path: str, region: str) -> tuple[str, list[Expected]]:
    builder = _Builder()
    _fill(rng, template, builder, region)
    return builder.result(path)


def _context_item(rng: random.Random) -> Item:
    """A nudge context: the user's traits, their steps and the last event."""
    region = rng.choice(PHONE_REGIONS)
    person = _Person(rng, region)
    note, note_expected = _string_in_json(rng, rng.choice(TEXT_TEMPLATES), "$.steps[1].note", region)
    title, title_expected = _string_in_json(rng, rng.choice(STEP_TITLES), "$.steps[0].title", region)
    value = {
        "user": {
            "traits": {"email": person.email, "firstName": person.first, "plan": "pro", "seats": 12},
            "locale": "en-" + region,
            "phone_number": person.phone,
        },
        "steps": [
            {"title": title, "done": True, "completed_at": "2026-11-20T10:15:00Z"},
            {"title": rng.choice(STEP_NAMES), "done": False, "note": note},
        ],
        "last_event": {"name": "Project Created", "properties": {"project_id": f"p_{rng.randint(1, 50000)}"}},
        "ssn": _ssn(rng),
    }
    expected = [
        Expected("EMAIL", "$.user.traits.email"),
        Expected("NAME", "$.user.traits.firstName"),
        Expected("PHONE", "$.user.phone_number"),
        Expected("SSN", "$.ssn"),
        *title_expected,
        *note_expected,
    ]
    if rng.random() < 0.5:
        invitee = _email(rng, rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES))
        value["invites"] = {invitee: {"role": "member", "sent": 2}}
        expected.append(Expected("EMAIL", '$.invites["[EMAIL]"]', 0, len(invitee)))
    return Item(value=value, expected=tuple(expected), source="nudge context", region=region)


def _event_item(rng: random.Random) -> Item:
    """Segment event properties, where PII hides in free-form values."""
    region = rng.choice(PHONE_REGIONS)
    card = _card(rng)
    ip = _ip(rng)
    name, properties, expected = rng.choice(
        [
            ("Invoice Sent", {"amount": 129.0, "currency": "EUR", "to": "{EMAIL}"}, "to"),
            ("Payment Failed", {"reason": "card_declined", "card": card, "attempt": 2}, None),
            ("Teammate Invited", {"role": "admin", "invitee": "{EMAIL}", "count": 1}, "invitee"),
            (
                "Support Ticket Opened",
                {"subject": "Cannot log in", "body": "{TEXT}", "priority": "p2"},
                "body",
            ),
            ("Session Started", {"client_ip": ip, "os": "macOS 14.2", "app_version": "3.12.0"}, None),
        ]
    )
    findings: list[Expected] = []
    if name == "Payment Failed":
        findings.append(Expected("CARD", "$.properties.card", 0, len(card)))
    if name == "Session Started":
        findings.append(Expected("IP", "$.properties.client_ip"))
    if expected:
        path = f"$.properties.{expected}"
        template = rng.choice(TEXT_TEMPLATES) if properties[expected] == "{TEXT}" else properties[expected]
        properties[expected], found = _string_in_json(rng, template, path, region)
        findings.extend(found)
    value = {
        "event": name,
        "properties": properties,
        "context": {"locale": f"en-{region}", "page": {"path": "/onboarding/step-2"}},
        "messageId": f"ajs-{rng.getrandbits(128):032x}",
        "timestamp": "2026-11-30T09:41:12.345Z",
    }
    return Item(value=value, expected=tuple(findings), source="event properties", region=region)


# Hand-written negatives: numbers and strings that look like PII and are not.
NEGATIVES = [
    "Order #4111111111111112 shipped",  # card-like, fails Luhn
    "Tracking 4000 1234 5678 9011 (not a card)",
    "IBAN DE89 3704 0044 0532 0130 01 looks right but its checksum is wrong",
    "Reference GB82WEST12345698765433",
    "Upgraded to v2.10.3 yesterday, build 2026.11.30.4",
    "Release 3.4.1-beta.2 fixes the import",
    "Plan costs $49.99/month or €1.299,00 a year; 1,250,000 events included",
    "Trial ends 2026-12-15; meeting on 12/03/2026 at 10:30",
    "Synced at 2026-11-30T09:41:12Z, took 1h 23m 45s",
    "Order ORD-2026-000123 and invoice INV-77812 are paid",
    "Project p_12345 has 42 tasks and 7 members",
    "messageId 550e8400-e29b-41d4-a716-446655440000",
    "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 deployed",
    "Employee count 1200-1500, ARR 2.4M, NPS 61",
    "SSN field must look like 000-12-3456? No: 666-45-6789 and 900-12-3456 are invalid too",
    "The call lasted 00:45:12 and covered steps 1 2 3 4 5 6 7",
    "Quantity 123456789 exceeds the limit",
    "Account id 4155550123 was merged",
    "Use the API token from Settings > Developers",
    "Reset your password in the profile menu",
    "Born to build: our onboarding story",
    "Date of the webinar: 2026-03-04",
    "Error E_1024 at line 88, column 12",
    "Zip file archive_2026_11_30.zip is 34 MB",
    "Coordinates 48.8566, 2.3522",
    "Rated 4.5/5 by 1,024 users",
    "Version 10.0.19045 of Windows",
    "Invoice total 12 345,67 EUR",
    "Use coupon SPRING2026 before 31/12/2026",
    "Token bucket: 1000 requests per 60 seconds",
    "Timestamp 1732960872 in seconds, 1732960872123 in ms",
    "Port 8080, retries 3, timeout 30s",
    "ProjectCreatedEventHandlerV2 and OnboardingChecklistWidget42 are class names",
    "Transaction id TXN9081726354 settled",
    "Time zone UTC+05:30, offset -08:00",
    "Page /docs/api/v1/events?limit=100&offset=200",
    "Step 3 of 12 done in 4 minutes",
    "Read the guide at https://docs.example.com/guides/getting-started-2026",
    "Ratio 16:9, resolution 1920x1080",
    "Ticket #483920 escalated to tier 2",
]


def _negative_items(rng: random.Random) -> list[Item]:
    items = [Item(value=text, expected=(), source="negative") for text in [*NEGATIVES, *encoded.NEGATIVES]]
    for _ in range(25):
        items.append(
            Item(value=f"Reference number {_bad_card(rng)} on the form", expected=(), source="negative")
        )
        items.append(Item(value=f"Bank ref {_iban(rng, valid=False)} (typo)", expected=(), source="negative"))
        items.append(
            Item(
                value=f"Shipped v{rng.randint(1, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 99)} on "
                f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} "
                f"for ${rng.randint(5, 900)}.{rng.randint(0, 99):02d}",
                expected=(),
                source="negative",
            )
        )
    return items


def build_corpus(seed: int = SEED) -> list[Item]:
    rng = random.Random(seed)
    items: list[Item] = []
    for _ in range(8):
        items.extend(_text_item(rng, template, "text") for template in TEXT_TEMPLATES)
    items.extend(_text_item(rng, template, "step title") for template in STEP_TITLES * 5)
    items.extend(_contact_text_item(rng) for _ in range(60))
    items.extend(_context_item(rng) for _ in range(60))
    items.extend(_event_item(rng) for _ in range(60))
    items.extend(_negative_items(rng))
    return items


# --- Scoring ------------------------------------------------------------------------------------


@dataclass
class Scores:
    true_positives: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    false_positives: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    false_negatives: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    exact_spans: int = 0
    missed: list[tuple[Item, Expected]] = field(default_factory=list)
    spurious: list[tuple[Item, Any]] = field(default_factory=list)

    def types(self) -> list[str]:
        return sorted(set(self.true_positives) | set(self.false_positives) | set(self.false_negatives))

    def recall(self, kind: str) -> float:
        found = self.true_positives[kind]
        total = found + self.false_negatives[kind]
        return found / total if total else 1.0

    def precision(self, kind: str) -> float:
        found = self.true_positives[kind]
        total = found + self.false_positives[kind]
        return found / total if total else 1.0

    def overall_precision(self) -> float:
        found = sum(count for kind, count in self.true_positives.items() if kind != CONTACT)
        return found / ((found + sum(self.false_positives.values())) or 1)

    def overall_recall(self) -> float:
        found = sum(count for kind, count in self.true_positives.items() if kind != CONTACT)
        return found / ((found + sum(self.false_negatives.values())) or 1)


def _overlaps(finding: Any, expected: Expected) -> bool:
    if expected.start is None or finding.start is None:
        return expected.start is None and finding.start is None
    return finding.start < expected.end and expected.start < finding.end


def score(corpus: list[Item], redact) -> Scores:
    """`redact(value, contact=..., region=...)` returns an object with `.findings`."""
    scores = Scores()
    for item in corpus:
        findings = list(redact(item.value, contact=item.contact, region=item.region).findings)
        unmatched = list(findings)
        for expected in item.expected:
            match = next(
                (
                    finding
                    for finding in unmatched
                    if finding.type == expected.type
                    and finding.path == expected.path
                    and _overlaps(finding, expected)
                ),
                None,
            )
            buckets = [expected.type, CONTACT] if expected.contact else [expected.type]
            for bucket in buckets:
                if match is None:
                    scores.false_negatives[bucket] += 1
                else:
                    scores.true_positives[bucket] += 1
            if match is None:
                scores.missed.append((item, expected))
            else:
                unmatched.remove(match)
                scores.exact_spans += (match.start, match.end) == (expected.start, expected.end)
        for finding in unmatched:
            scores.false_positives[finding.type] += 1
            scores.spurious.append((item, finding))
    return scores
