"""Pre-approval checks: each one failing and passing, on the template as the pipeline composes it."""

import pytest

from nudges.content import checks as template_checks
from nudges.content import composer
from nudges.content.checks import sms_segments
from tests.factories import WorkspaceFactory
from tests.nudges.factories import NudgeSettingsFactory

pytestmark = pytest.mark.django_db

GOOD_EMAIL = {
    "subject": "Next: {{ step_title }}",
    "body": "Hi {{ first_name }}, you are {{ percent_complete }}% through {{ path_name }}.",
    "cta_text": "Continue",
    "cta_url": "{{ step_link }}",
}


@pytest.fixture
def workspace():
    workspace = WorkspaceFactory(name="Acme")
    NudgeSettingsFactory(
        workspace=workspace,
        postal_address="Acme Inc.\n1 Market Street\nSan Francisco, CA 94105",
        allowed_link_domains=["app.example.com"],
        banned_words=["free", "act now"],
        sms_opt_out_text="Reply STOP to opt out.",
    )
    return workspace


def run(workspace, channel="email", **texts):
    return {
        result.code: result
        for result in template_checks.run_checks(
            workspace=workspace, channel=channel, **{**GOOD_EMAIL, **texts}
        )
    }


def failed(results) -> dict[str, str]:
    return {code: result.message for code, result in results.items() if not result.passed}


def test_a_good_email_passes_every_email_check(workspace):
    results = run(workspace)

    assert list(results) == [
        "variables",
        "content",
        "unsubscribe_link",
        "postal_address",
        "banned_words",
        "links",
    ]
    assert failed(results) == {}
    assert not any(result.warning for result in results.values())


def test_results_are_stored_as_code_passed_message(workspace):
    result = run(workspace)["links"]

    assert result.as_dict() == {
        "code": "links",
        "passed": True,
        "message": "every link is a deep link or on an allowed domain",
        "warning": False,
    }


# --- Variables and content -----------------------------------------------------------------------


def test_unknown_variables_are_refused_with_their_names(workspace):
    results = run(workspace, body="Hi {{ first_name }}, use {{ coupon }} before {{ expiry_date }}.")

    assert failed(results) == {"variables": "unknown variables: {{ coupon }}, {{ expiry_date }}"}


def test_a_malformed_variable_is_refused(workspace):
    results = run(workspace, subject="Hi {{ first name }}")

    assert failed(results) == {
        "variables": "malformed {{ ... }} in subject: a variable is written {{ name }}"
    }


def test_an_email_needs_a_subject_and_every_template_a_body(workspace):
    assert failed(run(workspace, subject=""))["content"] == "an email needs a subject"
    assert failed(run(workspace, channel="in_app", body="  "))["content"] == "the body is empty"
    assert "content" not in failed(run(workspace, channel="in_app", subject=""))


# --- Email: unsubscribe link and postal address (CAN-SPAM) ----------------------------------------


def test_the_pipeline_footer_carries_the_unsubscribe_link_and_the_postal_address(workspace):
    results = run(workspace, body="No footer written in this template.")

    assert results["unsubscribe_link"].passed
    assert results["postal_address"].passed
    assert results["postal_address"].message == "the email carries the workspace's postal address"


def test_an_email_composed_without_the_unsubscribe_link_fails(workspace, monkeypatch):
    original = composer.message_for

    def without_footer(**kwargs):
        message = original(**kwargs)
        return type(message)(**{**message.__dict__, "body": message.body.split("\n\n--\n")[0]})

    monkeypatch.setattr(composer, "message_for", without_footer)

    assert failed(run(workspace))["unsubscribe_link"] == (
        "the email must carry the one-click unsubscribe link: put {{ unsubscribe_url }} in the body"
    )
    placed = run(
        workspace,
        body="Hi. Unsubscribe: {{ unsubscribe_url }} Acme Inc., 1 Market Street, San Francisco, CA 94105",
    )
    assert failed(placed) == {}


def test_a_workspace_without_a_postal_address_cannot_send_email(workspace):
    workspace.nudge_settings.postal_address = "  "
    workspace.nudge_settings.save()

    assert failed(run(workspace)) == {
        "postal_address": "the workspace has no postal address in its nudge settings: every email must carry"
        " one (CAN-SPAM)"
    }


def test_a_workspace_without_nudge_settings_fails_the_address_and_any_absolute_link():
    workspace = WorkspaceFactory()

    results = run(workspace, cta_url="https://app.example.com/setup")

    assert set(failed(results)) == {"postal_address", "links"}
    assert failed(results)["links"] == (
        "https://app.example.com/setup points to app.example.com, not an allowed domain"
        " (allowed domains: none set in the nudge settings)"
    )


# --- SMS: length and opt-out text ---------------------------------------------------------------------


def test_sms_segments_count_gsm7_and_ucs2_characters():
    assert sms_segments("a" * 160) == (1, "GSM-7", 160)
    assert sms_segments("a" * 161) == (2, "GSM-7", 161)
    assert sms_segments("€" * 80) == (1, "GSM-7", 160)  # an extension character counts twice
    assert sms_segments("é" * 160) == (1, "GSM-7", 160)
    assert sms_segments("ł" * 70) == (1, "UCS-2", 70)
    assert sms_segments("ł" * 71) == (2, "UCS-2", 71)
    assert sms_segments("a" * 153 * 3) == (3, "GSM-7", 459)
    assert sms_segments("a" * 460) == (4, "GSM-7", 460)


def test_a_short_sms_fits_one_segment_with_the_link_and_the_opt_out_text(workspace):
    results = run(workspace, channel="sms", subject="", body="Hi {{ first_name }}, one step left.")

    assert list(results) == ["variables", "content", "sms_length", "sms_opt_out", "banned_words", "links"]
    assert failed(results) == {}
    assert results["sms_length"].warning is False
    assert results["sms_length"].message.endswith(": one segment")
    assert results["sms_opt_out"].message == "the SMS carries the opt-out text"


def test_a_longer_sms_is_a_warning_and_a_very_long_one_fails(workspace):
    two_segments = run(workspace, channel="sms", body="a" * 150, cta_url="")
    too_long = run(workspace, channel="sms", body="a" * 470, cta_url="")

    assert (two_segments["sms_length"].passed, two_segments["sms_length"].warning) == (True, True)
    assert "2 segments (one holds 160)" in two_segments["sms_length"].message
    assert failed(too_long) == {
        "sms_length": "493 GSM-7 characters as sent (with the tracked link and the opt-out text): 4 segments,"
        " more than the 3 allowed"
    }


def test_a_character_outside_gsm7_makes_the_sms_ucs2(workspace):
    results = run(workspace, channel="sms", body="Zdjęcie gotowe 📷", cta_url="")

    assert results["sms_length"].message.startswith("40 UCS-2 characters")


def test_sms_without_opt_out_text_in_the_settings_fails(workspace):
    workspace.nudge_settings.sms_opt_out_text = ""
    workspace.nudge_settings.save()

    assert failed(run(workspace, channel="sms", body="Hi")) == {
        "sms_opt_out": "the workspace has no SMS opt-out text in its nudge settings"
    }


def test_an_sms_composed_without_the_opt_out_text_fails(workspace, monkeypatch):
    original = composer.message_for

    def without_opt_out(**kwargs):
        message = original(**kwargs)
        return type(message)(
            **{**message.__dict__, "body": message.body.replace("Reply STOP to opt out.", "")}
        )

    monkeypatch.setattr(composer, "message_for", without_opt_out)

    assert failed(run(workspace, channel="sms", body="Hi"))["sms_opt_out"] == (
        "the SMS must carry the opt-out text “Reply STOP to opt out.”"
    )
    assert "sms_opt_out" not in failed(run(workspace, channel="sms", body="Hi. reply stop  to opt out."))


# --- Banned words and links ---------------------------------------------------------------------------


def test_banned_words_match_whole_words_in_any_case(workspace):
    assert failed(run(workspace, subject="Get it FREE", cta_text="Act now!")) == {
        "banned_words": "banned words: free, act now"
    }
    assert failed(run(workspace, body="Freedom is a feature; freely available.")) == {}


def test_links_go_to_allowed_domains_subdomains_or_relative_deep_links(workspace):
    assert failed(run(workspace, cta_url="/settings/integrations")) == {}
    assert failed(run(workspace, cta_url="https://docs.app.example.com/guide")) == {}
    assert failed(run(workspace, cta_url="https://app.example.com/{{ step_link }}")) == {}
    assert failed(run(workspace, body='Read <a href="https://app.example.com/blog">this</a>.')) == {}


def test_links_elsewhere_are_refused_each_named(workspace):
    results = run(
        workspace,
        cta_url="https://evil-app.example.com.attacker.io/login",
        body="See https://other.org/page. Or www.third.net, or javascript:alert(1) via "
        '<a href="javascript:alert(1)">here</a>.',
    )

    assert failed(results) == {
        "links": "https://evil-app.example.com.attacker.io/login points to evil-app.example.com.attacker.io, "
        "not an allowed domain; https://other.org/page points to other.org, not an allowed domain; "
        "www.third.net points to www.third.net, not an allowed domain; javascript:alert(1) is neither a "
        "relative deep link (/...) nor an http(s) link (allowed domains: app.example.com)"
    }


def test_bare_and_disguised_domains_in_the_texts_are_links_too(workspace):
    results = run(
        workspace,
        subject="Unlock at secure-login-check.com",
        body="Or write to help (at) evil (dot) io, or go to hxxps://evil[.]com/x.",
    )

    assert failed(results) == {
        "links": "secure-login-check.com points to secure-login-check.com, not an allowed domain; "
        "help@evil.io points to evil.io, not an allowed domain; https://evil.com/x points to evil.com, "
        "not an allowed domain (allowed domains: app.example.com)"
    }


def test_prose_with_dots_and_allowed_bare_domains_passes(workspace):
    body = "Works with Node.js; upload file.txt; version 2.5, e.g. at docs.app.example.com/guide."

    assert failed(run(workspace, body=body)) == {}


def test_protocol_relative_links_are_not_deep_links(workspace):
    assert "links" in failed(run(workspace, cta_url="//other.org/x"))


def test_the_platforms_own_links_are_allowed(workspace, settings):
    settings.PUBLIC_BASE_URL = "https://nudges.platform.test"

    assert failed(run(workspace, body="Manage: https://nudges.platform.test/preferences")) == {}
