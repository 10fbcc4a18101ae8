"""No log line carries contact data: identify calls with the PII canaries of tests/factories.py,
valid and invalid, single and batched, logged at DEBUG by every logger, leave none in the logs.

(tests/conftest.py checks the same for every log line of the whole suite.)"""

import logging

import pytest

from core.logging import JsonFormatter
from onboarding.models import Contact
from tests.factories import CANARY_EMAIL, CANARY_TRAITS, PII_CANARIES, PII_CANARY_DIGITS

pytestmark = pytest.mark.django_db


@pytest.fixture
def every_logger_at_debug(caplog):
    """caplog at DEBUG for the root and every named logger, restored afterwards."""
    named = [
        logger for logger in logging.Logger.manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    levels = {logger: logger.level for logger in named}
    for logger in named:
        logger.setLevel(logging.DEBUG)
    caplog.set_level(logging.DEBUG)
    yield caplog
    for logger, level in levels.items():
        logger.setLevel(level)


def log_lines(caplog) -> list[str]:
    formatter = JsonFormatter()
    return [formatter.format(record) for record in caplog.records]


def assert_no_canary(lines: list[str]) -> None:
    for line in lines:
        digits = "".join(character for character in line if character.isdigit())
        assert not any(canary.lower() in line.lower() for canary in PII_CANARIES), line
        assert PII_CANARY_DIGITS not in digits, line


def test_identify_calls_with_contact_traits_log_none_of_them(segment, every_logger_at_debug):
    accepted = segment("identify", {"userId": "canary-1", "traits": {**CANARY_TRAITS, "plan": "pro"}})
    batch = segment(
        "batch",
        {
            "batch": [
                {"type": "identify", "userId": "canary-2", "traits": CANARY_TRAITS},
                {"type": "track", "userId": "canary-2", "event": "Signed Up", "properties": {"plan": "pro"}},
            ]
        },
    )

    assert (accepted.status_code, batch.status_code) == (200, 200)
    # The canaries did arrive (so the check below is not vacuous) and went to Contact only.
    assert set(Contact.objects.values_list("email", flat=True)) == {CANARY_EMAIL}
    assert_no_canary(log_lines(every_logger_at_debug))


def test_invalid_calls_carrying_contact_traits_log_none_of_them(segment, every_logger_at_debug):
    single = segment("identify", {"userId": {"id": 1}, "traits": CANARY_TRAITS})
    partly = segment(
        "batch",
        {
            "batch": [
                {"type": "identify", "traits": CANARY_TRAITS},  # no userId or anonymousId
                {"type": "identify", "userId": "canary-3", "traits": {**CANARY_TRAITS, "email": "x\u0000y"}},
                {"type": "identify", "userId": "canary-4", "traits": CANARY_TRAITS},
            ]
        },
    )

    assert single.status_code == 400
    assert partly.status_code == 400 and partly.json()["code"] == "partially_rejected"
    assert CANARY_EMAIL not in single.content.decode() + partly.content.decode()
    lines = log_lines(every_logger_at_debug)
    assert any('"events.rejected"' in line for line in lines)
    assert_no_canary(lines)


def test_the_suite_wide_check_sees_a_leak(segment):
    """The session handler of tests/conftest.py flags a line that does carry a canary."""
    from tests.conftest import _PiiCanaryHandler

    handler = _PiiCanaryHandler()
    logger = logging.getLogger("tests.canary")
    logger.addHandler(handler)
    logger.propagate = False  # kept away from the suite-wide handler: this leak is on purpose
    try:
        logger.warning("contact.sent", extra={"to": "Canary.PII.7F3A@example.com"})
        logger.warning("contact.sent", extra={"phone": "(415) 555-0173"})
        logger.warning("contact.sent", extra={"to": "someone-else@example.com"})
    finally:
        logger.removeHandler(handler)
        logger.propagate = True

    assert len(handler.leaks) == 2
