import logging

import pytest

from guardrails.pii import detector as pii
from guardrails.pii.detector import Finding, Redaction, SafeRedaction
from onboarding.models import Contact
from tests.guardrails import pii_corpus


@pytest.fixture(scope="module")
def corpus():
    return pii_corpus.build_corpus()


@pytest.fixture(scope="module")
def scores(corpus):
    return pii_corpus.score(corpus, pii.redact)


def test_corpus_has_a_few_hundred_items_of_every_kind(corpus):
    sources = {item.source for item in corpus}
    assert len(corpus) >= 400
    assert sources == {"text", "step title", "contact text", "nudge context", "event properties", "negative"}
    assert sum(1 for item in corpus if not item.expected) >= 100


@pytest.mark.parametrize("kind", ["EMAIL", "PHONE", "CARD", pii_corpus.CONTACT])
def test_corpus_recall_on_emails_phones_cards_and_contact_values(scores, kind):
    assert scores.true_positives[kind] >= 50
    assert scores.recall(kind) >= 0.99, [expected for _, expected in scores.missed if expected.type == kind]


def test_corpus_precision_overall_and_per_type(scores):
    assert scores.overall_precision() >= 0.95
    for kind in scores.types():
        assert scores.precision(kind) >= 0.95, (kind, [finding for _, finding in scores.spurious])


def test_corpus_negatives_are_left_alone(corpus):
    for item in corpus:
        if item.source == "negative":
            assert pii.redact(item.value).value == item.value


@pytest.mark.parametrize(
    ("kind", "text", "found", "near_miss"),
    [
        (
            "EMAIL",
            "write to Jane.Doe+trial@mail.example.co.uk today",
            "Jane.Doe+trial@mail.example.co.uk",
            "a@b",
        ),
        ("PHONE", "call +44 20 7946 0958 now", "+44 20 7946 0958", "call 020 7946 now"),
        ("PHONE", "call (415) 555-0123 now", "(415) 555-0123", "build 2026.11.30 now"),
        (
            "CARD",
            "card 4111 1111 1111 1111 declined",
            "4111 1111 1111 1111",
            "card 4111 1111 1111 1112 declined",
        ),
        ("CARD", "amex 3782-822463-10005 ok", "3782-822463-10005", "order 3782822463100051 ok"),
        (
            "IBAN",
            "IBAN DE89 3704 0044 0532 0130 00.",
            "DE89 3704 0044 0532 0130 00",
            "DE89 3704 0044 0532 0130 01",
        ),
        ("SSN", "SSN 123-45-6789 on file", "123-45-6789", "SSN 666-45-6789 on file"),
        ("IP", "from 192.168.10.20 and", "192.168.10.20", "version v1.2.3 and 999.1.1.1"),
        ("IP", "host 2001:db8::ff00:42:8329 up", "2001:db8::ff00:42:8329", "at 10:30:45 up"),
        (
            "ADDRESS",
            "ship to 221B Baker Street, London NW1 6XE.",
            "221B Baker Street, London NW1 6XE",
            "ship 3 Baker kits",
        ),
        ("ADDRESS", "bureau 12 rue de la Paix, 75002 Paris", "12 rue de la Paix, 75002 Paris", "12 rues"),
        ("SECRET", "key sk_live_51Habc9DEFghi2JKLmno3", "sk_live_51Habc9DEFghi2JKLmno3", "key sk_live_short"),
        ("SECRET", "Authorization: Bearer abcDEF123456ghiJKL789", "abcDEF123456ghiJKL789", "Bearer of news"),
        (
            "SECRET",
            "token aK3dE5fG7hJ9kL1mN3pQ5rS7tU9vW2",
            "aK3dE5fG7hJ9kL1mN3pQ5rS7tU9vW2",
            "OnboardingChecklistWidget42",
        ),
        ("DOB", "DOB: 1990-03-15, thanks", "1990-03-15", "Due date: 1990-03-15, thanks"),
        ("DOB", "she was born on March 3, 1985", "March 3, 1985", "since March 3, 1985"),
    ],
)
def test_each_type_is_found_and_its_near_miss_is_not(kind, text, found, near_miss):
    start = text.index(found)

    result = pii.redact(text, region="GB" if "+44" in text else "US")

    assert result.value == text[:start] + f"[{kind}]" + text[start + len(found) :]
    assert result.findings == [Finding(type=kind, path="$", start=start, end=start + len(found))]
    assert pii.redact(near_miss).findings == []


def test_nested_json_values_pii_named_keys_pii_in_keys_and_lists():
    value = {
        "user": {"email": "whatever it holds", "phoneNumber": 4155550123, "plan": "pro", "first_name": ""},
        "steps": [
            {"title": "Connect Slack", "done": True},
            {"title": "Verify", "note": "mail me at bob@example.com or 415-555-0123"},
        ],
        "bob@example.com": {"role": "admin"},
        "address": {"street": "1 Main St", "city": "Springfield"},
        "tags": ["vip", "reached via 10.0.0.7"],
        "count": 12,
    }

    result = pii.redact(value)

    assert result.value == {
        "user": {"email": "[EMAIL]", "phoneNumber": "[PHONE]", "plan": "pro", "first_name": ""},
        "steps": [
            {"title": "Connect Slack", "done": True},
            {"title": "Verify", "note": "mail me at [EMAIL] or [PHONE]"},
        ],
        "[EMAIL]": {"role": "admin"},
        "address": "[ADDRESS]",
        "tags": ["vip", "reached via [IP]"],
        "count": 12,
    }
    assert result.findings == [
        Finding(type="EMAIL", path="$.user.email"),
        Finding(type="PHONE", path="$.user.phoneNumber"),
        Finding(type="EMAIL", path="$.steps[1].note", start=11, end=26),
        Finding(type="PHONE", path="$.steps[1].note", start=30, end=42),
        Finding(type="EMAIL", path='$["[EMAIL]"]', start=0, end=15, in_key=True),
        Finding(type="ADDRESS", path="$.address"),
        Finding(type="IP", path="$.tags[1]", start=12, end=20),
    ]
    assert result.findings_summary() == {"EMAIL": 3, "PHONE": 2, "ADDRESS": 1, "IP": 1}
    assert value["user"]["email"] == "whatever it holds"  # the input is not changed


def test_a_number_sent_as_json_number_is_replaced():
    assert pii.redact({"reference": 4111111111111111, "seats": 12_000_000}).value == {
        "reference": "[CARD]",
        "seats": 12_000_000,
    }


def test_findings_never_hold_raw_values(corpus):
    for item in corpus:
        raw_values = [
            item.value[expected.start : expected.end]
            for expected in item.expected
            if isinstance(item.value, str) and expected.start is not None
        ]
        findings = pii.redact(item.value, contact=item.contact, region=item.region).findings
        serialised = repr(findings)
        assert not any(raw in serialised for raw in raw_values if len(raw) > 3)
        assert all(set(Finding.__slots__) == {"type", "path", "start", "end", "in_key"} for _ in findings)


def test_redacted_values_hold_no_raw_values(corpus):
    for item in corpus:
        if not isinstance(item.value, str):
            continue
        redacted = pii.redact(item.value, contact=item.contact, region=item.region).value
        for expected in item.expected:
            assert item.value[expected.start : expected.end] not in redacted


def test_contact_values_in_any_case_and_whole_words_only():
    contact = Contact(
        first_name="Ada",
        last_name="Lovelace",
        name="Ada Lovelace",
        email="ada@analytical.io",
        phone="+12025550143",
        address={"line1": "12 Marylebone Road", "city": "London", "country": "GB"},
    )
    text = (
        "ADA LOVELACE (ada@ANALYTICAL.io, 202 555 0143) wrote from london; Adam and Adalbert did not, nor GB."
    )

    result = pii.redact(text, contact=contact)

    assert (
        result.value == "[NAME] ([EMAIL], [PHONE]) wrote from [ADDRESS]; Adam and Adalbert did not, nor GB."
    )
    assert result.findings_summary() == {"NAME": 1, "EMAIL": 1, "PHONE": 1, "ADDRESS": 1}


def test_a_contact_name_that_is_a_word_is_matched_only_capitalised():
    result = pii.redact("Will said it will work, WILL agreed", contact={"first_name": "Will"})

    assert result.value == "[NAME] said it will work, [NAME] agreed"


def test_phone_national_formats_are_read_in_the_region():
    assert pii.redact("appelez le 06 12 34 56 78", region="FR").value == "appelez le [PHONE]"
    assert pii.redact("ruf 030 1234567 an", region="DE").value == "ruf [PHONE] an"
    # A German number must keep its trunk 0; without it this is more likely an id or a timestamp.
    assert pii.redact("ref 1699999999", region="DE").value == "ref 1699999999"
    assert pii.redact("call 98765 43210", region="IN").value == "call [PHONE]"
    assert pii.redact("call 98765 43210", region="ZZ").findings == []  # unknown region: US


def test_redact_for_llm_returns_the_redacted_value():
    result = pii.redact_for_llm({"note": "mail bob@example.com"}, budget_seconds=5)

    assert result == SafeRedaction(
        blocked=False,
        reason="",
        value={"note": "mail [EMAIL]"},
        findings=[Finding(type="EMAIL", path="$.note", start=5, end=20)],
    )


def test_redact_for_llm_blocks_when_a_detector_raises(monkeypatch, caplog):
    def broken(*arguments):
        raise ValueError("bob@example.com is not parseable")

    monkeypatch.setitem(pii.DETECTORS, "email", broken)

    with caplog.at_level(logging.WARNING, logger="guardrails.pii.detector"):
        result = pii.redact_for_llm({"note": "mail bob@example.com"}, budget_seconds=5)

    assert result == SafeRedaction(blocked=True, reason="pii_detection_error", value=None, findings=[])
    [record] = caplog.records
    assert record.getMessage() == "guardrails.pii.detector.blocked"
    assert (record.reason, record.error_type) == ("pii_detection_error", "ValueError")
    assert "bob@example.com" not in repr(record.__dict__)


def test_redact_for_llm_blocks_when_the_budget_is_exceeded(caplog):
    notes = [f"Note {index}: call 415-555-{index % 10_000:04d} about step 3." for index in range(20_000)]

    with caplog.at_level(logging.WARNING, logger="guardrails.pii.detector"):
        result = pii.redact_for_llm({"notes": notes}, budget_seconds=0.005)

    assert result == SafeRedaction(blocked=True, reason="pii_detection_timeout", value=None, findings=[])
    [record] = caplog.records
    assert record.reason == "pii_detection_timeout"
    assert "415-555" not in repr(record.__dict__)


def test_redact_for_llm_checks_the_budget_inside_one_long_string():
    text = "Completed step 3 and called 415-555-0123 at noon. " * 40_000

    result = pii.redact_for_llm(text, budget_seconds=0.005)

    assert (result.blocked, result.reason, result.value) == (True, "pii_detection_timeout", None)


def test_redaction_types_use_slots():
    assert not hasattr(Finding(type="EMAIL", path="$"), "__dict__")
    assert not hasattr(Redaction(value="", findings=[]), "__dict__")
    assert not hasattr(SafeRedaction(blocked=True, reason="x"), "__dict__")


@pytest.mark.parametrize(
    ("locale", "region"),
    [("fr-FR", "FR"), ("en_GB", "GB"), ("de", "US"), ("", "US"), (None, "US"), ("xx-QQ", "US")],
)
def test_region_from_locale(locale, region):
    assert pii.region_from_locale(locale) == region


# --- Encoded and lower-case shapes (issue 12) --------------------------------------------------


@pytest.mark.parametrize(
    ("text", "found", "kind"),
    [
        (
            "see https://app.example.com/signup?email=name%40example.org&ref=nudge",
            "name%40example.org",
            "EMAIL",
        ),
        ("reset link /u?e=jane.doe%2540mail.example.co.uk&t=1", "jane.doe%2540mail.example.co.uk", "EMAIL"),
        (
            "%6a%61%6e%65%40%65%78%61%6d%70%6c%65%2e%63%6f%6d wrote",
            "%6a%61%6e%65%40%65%78%61%6d%70%6c%65%2e%63%6f%6d",
            "EMAIL",
        ),
        ("reply to jane&#64;example&#46;org soon", "jane&#64;example&#46;org", "EMAIL"),
        ("reply to jane&commat;example.org soon", "jane&commat;example.org", "EMAIL"),
        ("opened /r?u=bmFtZUBleGFtcGxlLm9yZw from the digest", "bmFtZUBleGFtcGxlLm9yZw", "EMAIL"),
        ("opened /r?u=bmFtZUBleGFtcGxlLm9yZw%3D%3D&x=1", "bmFtZUBleGFtcGxlLm9yZw%3D%3D", "EMAIL"),
        ("call /c?n=%2B1%20415%20555%200123 now", "%2B1%20415%20555%200123", "PHONE"),
        (
            "visit 1600 pennsylvania avenue nw, washington dc 20500 today",
            "1600 pennsylvania avenue nw, washington dc 20500",
            "ADDRESS",
        ),
        (
            "visit 1600 Pennsylvania Avenue NW, Washington DC 20500 today",
            "1600 Pennsylvania Avenue NW, Washington DC 20500",
            "ADDRESS",
        ),
        (
            "visit 1600 PENNSYLVANIA AVE NW, WASHINGTON, DC 20500-0003 today",
            "1600 PENNSYLVANIA AVE NW, WASHINGTON, DC 20500-0003",
            "ADDRESS",
        ),
        ("ship to 12 main st, springfield, il 62701.", "12 main st, springfield, il 62701", "ADDRESS"),
        ("at 221b baker street, london nw1 6xe.", "221b baker street, london nw1 6xe", "ADDRESS"),
        ("bureau 12 rue de la paix, 75002 paris", "12 rue de la paix, 75002 paris", "ADDRESS"),
        (
            "map https://maps.example.com/?q=1600+pennsylvania+avenue+nw%2C+washington+dc+20500&z=14",
            "1600+pennsylvania+avenue+nw%2C+washington+dc+20500",
            "ADDRESS",
        ),
    ],
)
def test_encoded_and_lower_case_pii_is_redacted_in_its_written_form(text, found, kind):
    start = text.index(found)

    result = pii.redact(text)

    assert result.value == text[:start] + f"[{kind}]" + text[start + len(found) :]
    assert result.findings == [Finding(type=kind, path="$", start=start, end=start + len(found))]


@pytest.mark.parametrize(
    "text",
    [
        "Search /help?q=onboarding+checklist&page=2 for more",
        "Progress 100%25 after step 3 (%2B 2 bonus)",
        "Tom &amp; Jerry finished step 3 &mdash; nice",
        "Open /r?step=c3RlcF9jb21wbGV0ZWQ and continue",
        "It took 5 minutes down the road, in 20500 ways",
        "Upgraded 12 seats way over plan, in 20500",
    ],
)
def test_encoded_text_without_pii_is_left_as_it_is(text):
    assert pii.redact(text).value == text


def test_the_llm_never_receives_the_encoded_email_or_the_lower_case_address():
    payload = {
        "context": {
            "last_page": "https://app.example.com/invite?email=name%40example.org",
            "note": "moved to 1600 pennsylvania avenue nw, washington dc 20500",
        }
    }

    result = pii.redact_for_llm(payload, budget_seconds=5)

    assert result.value == {
        "context": {"last_page": "https://app.example.com/invite?email=[EMAIL]", "note": "moved to [ADDRESS]"}
    }
    serialised = repr(result.value).lower()
    for leaked in ("name%40", "example.org", "pennsylvania", "washington", "20500"):
        assert leaked not in serialised


def test_corpus_encoded_and_any_case_shapes_are_all_found(corpus, scores):
    shapes = ("%40", "&#", "&commat;", "?u=", "+", "nw1", "dc ")
    encoded = [
        item for item in corpus if item.source == "text" and any(shape in item.value for shape in shapes)
    ]
    assert len(encoded) >= 30
    missed = [expected for item, expected in scores.missed if item in encoded]
    assert missed == []
    assert scores.recall("ADDRESS") == scores.recall("EMAIL") == 1.0
    assert scores.precision("ADDRESS") == scores.precision("EMAIL") == 1.0
