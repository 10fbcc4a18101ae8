# ruff: noqa: RUF001, RUF003  (look-alike characters are what these tests are about)
"""The LLM's answer may hold no link that is not allowed: whatever a mail client or a browser would
turn into a link (bare domains, look-alikes, disguised and split links, e-mail addresses, IP
addresses) is refused unless it goes to the workspace's allowed domains, and ordinary prose with
dots in it still passes. Pure: nudges.llm.output.validate and nudges.content.link_scan, no database."""

import json

import pytest

from nudges.content import link_scan
from nudges.llm import output as llm_output
from nudges.llm.output import LINK_NOT_ALLOWED, PII_IN_OUTPUT, Rejected, Rules

DRAFT = (
    "Finish your setup",
    "Hi {{ first_name }}, one step to go: connect your data.",
    "Continue",
    "/projects/connect",
)
RULES = Rules(
    channel="email",
    links=["/projects/connect"],
    draft_texts=DRAFT,
    allowed_link_domains=["acme.io", "пример.рф"],
    pii_budget_seconds=5,
)


def answer(**fields: str) -> str:
    return json.dumps(
        {
            "subject": "Finish your setup",
            "body": "One step to go: connect your data.",
            "cta_text": "Continue",
            "ui_component": "email",
            "deep_link": "/projects/connect",
            **fields,
        }
    )


LINKIFIABLE = [
    "Go to secure-login-check.com/unlock and sign in again.",
    "Visit secure-login-check.com",
    "Reset it on secure-login-check.net/unlock?next=/home",
    "Sign in at login.secure-check.io today",
    "Open acme-support.co.uk/reset",
    "Claim your prize at prize.xyz!",
    "See docs.example.dev/start for more.",
    "Open invoice.zip now",
    "Read readme.md first",
    "Your account: account-verify.online",
    "Go to paypal.com.account-check.info/login",
    "Go to EXAMPLE.COM/RESET",
    "Sign in: Secure-Login-Check.Com",
    "Go to example.com:8443/login",
    "Go to xn--80ak6aa92e.com",
    "Go to xn--pple-43d.com/login",
    "Go to example.xn--p1ai",
    "Go to банк-вход.рф",
    "Go to аpple.com/login",
    "Go to gооgle.com",
    "Go to paypal.соm",
    "Go to example.сом",
    "Go to ｅｘａｍｐｌｅ．ｃｏｍ",
    "Go to example。com",
    "Go to example｡com",
    "Go to münchen-bank.de",
    "Go to https://secure-login-check.com",
    "Go to http://secure-login-check.com",
    "Go to hxxp://secure-login-check.com",
    "Go to hxxps://secure-login-check.com/unlock",
    "Go to hXXps://secure-login-check.com",
    "Go to hxxps[:]//secure-login-check[.]com",
    "Go to secure-login-check[.]com",
    "Go to secure-login-check(.)com",
    "Go to secure-login-check{.}com",
    "Go to secure-login-check[dot]com",
    "Go to secure-login-check (dot) com",
    "Go to secure-login-check dot com",
    "Go to secure-login-check . com",
    "Go to secure-login-check .com",
    "Go to secure-login-check. com",
    "Go to secure-login-check\u200b.com",
    "Go to secure\u200b-login-check.com",
    "Go to secure-login-check.\u200dcom",
    "Go to secure-login-check\u2060.com",
    "Go to secure-login-check\ufeff.com",
    "Go to secure-login-check\u00ad.com",
    "Go to secure-login-check\u202e.com",
    "Go to www.secure-login-check.com",
    "Go to www.example",
    "Go to ftp://files.example.org/x",
    "Go to //secure-login-check.com/unlock",
    "Write to support@secure-login-check.com",
    "Write to support (at) secure-login-check (dot) com",
    "Write to support[at]secure-login-check[.]com",
    "Go to 203.0.113.7/login",
    "Go to http://203.0.113.7:8080/",
    "Go to hxxp://198.51.100.23",
    "Go to 198[.]51[.]100[.]23",
    "Go to http://[2001:db8::1]/login",
]

# Refused by the PII scan first (it finds e-mail addresses and IP addresses): the graver reason.
PERSONAL_DATA = {
    "Write to support@secure-login-check.com",
    "Go to 203.0.113.7/login",
    "Go to http://203.0.113.7:8080/",
    "Go to hxxp://198.51.100.23",
    "Go to http://[2001:db8::1]/login",
}

LEGITIMATE = [
    "You are on version 2.5 of the app.",
    "Use filters, e.g. by date or by owner.",
    "Works with Node.js and Vue.js.",
    "Upload file.txt, report.pdf, data.csv or config.yaml.",
    "Step 3.2 of 10 is next.",
    "It costs $4.99 a month.",
    "That is 3.14 times faster.",
    "Meet at 10:30 a.m. tomorrow.",
    "Dr. Smith says hi.",
    "Done. Today you can invite your team.",
    "U.S. and E.U. customers are welcome.",
    "Finish step one. Then the next.",
    "It takes approx. one minute.",
    "Built on .NET 8 and Python 3.11.",
    "The last step, i.e. the report, is the fun part.",
    "Open the /projects/connect page.",
    "Rated 4.5/5 by teams like yours.",
    "Release v1.2.3-beta is out.",
    "Open index.html in your browser.",
    "Read docs.acme.io/start or https://app.acme.io/projects.",
    "Your workspace lives at ACME.IO.",
    "Same place: xn--e1afmkfd.xn--p1ai/start",
]


@pytest.mark.parametrize("text", LINKIFIABLE)
def test_an_answer_with_a_link_a_mail_client_would_make_is_refused(text):
    with pytest.raises(Rejected) as rejected:
        llm_output.validate(answer(body=f"{text} It takes two minutes."), RULES)

    if text in PERSONAL_DATA:
        assert rejected.value.code == PII_IN_OUTPUT
    else:
        assert rejected.value.code == LINK_NOT_ALLOWED
        assert rejected.value.message.startswith("body holds a link that is not allowed (")
        assert "secure-login-check" not in rejected.value.message  # the reason names the kind only


def test_the_list_is_long_enough():
    assert len(LINKIFIABLE) >= 50
    assert all(link_scan.links_in(text) for text in LINKIFIABLE)


@pytest.mark.parametrize("text", LEGITIMATE)
def test_prose_with_dots_and_allowed_domains_passes(text):
    output = llm_output.validate(answer(body=text), RULES)

    assert output.body == text


@pytest.mark.parametrize(
    ("field", "text", "kind"),
    [
        ("subject", "Unlock at secure-login-check.com", link_scan.BARE_DOMAIN),
        ("cta_text", "Open аcme.io", link_scan.LOOK_ALIKE),  # a Cyrillic "а"
        ("body", "Open acme.io.secure-login-check.com", link_scan.BARE_DOMAIN),
        ("body", "Open evilacme.io", link_scan.BARE_DOMAIN),
        ("body", "Open hxxps://evil[.]com", link_scan.URL),
        ("body", "Open //evil.com", link_scan.PROTOCOL_RELATIVE),
        ("body", "Open 198[.]51[.]100[.]23", link_scan.IP_ADDRESS),
        ("body", "Write to help (at) evil (dot) io", link_scan.EMAIL),
    ],
)
def test_the_reason_names_the_field_and_the_kind_of_link(field, text, kind):
    with pytest.raises(Rejected) as rejected:
        llm_output.validate(answer(**{field: text}), RULES)

    assert (rejected.value.code, rejected.value.message) == (
        LINK_NOT_ALLOWED,
        f"{field} holds a link that is not allowed ({kind})",
    )


def test_a_host_the_draft_links_to_may_be_repeated():
    rules = Rules(
        channel="email",
        links=["/projects/connect"],
        draft_texts=(*DRAFT, "Guide: https://help.vendor-docs.com/connect"),
        pii_budget_seconds=5,
    )

    output = llm_output.validate(answer(body="The guide at help.vendor-docs.com/connect helps."), rules)

    assert output.body == "The guide at help.vendor-docs.com/connect helps."
    with pytest.raises(Rejected):
        llm_output.validate(answer(body="See vendor-docs.com.evil.net first."), rules)


@pytest.mark.parametrize(
    ("text", "normalised"),
    [
        ("secure-login-check\u200b.com", "secure-login-check.com"),
        ("hxxps[:]//evil[.]com", "https://evil.com"),
        ("help (at) evil (dot) io", "help@evil.io"),
        ("ｅｘａｍｐｌｅ．ｃｏｍ", "example.com"),
        ("evil . com", "evil.com"),
        ("Finish setup. Then go.", "Finish setup. Then go."),
        ("Built on .NET 8", "Built on .NET 8"),
    ],
)
def test_normalised_undoes_disguises_and_keeps_prose(text, normalised):
    assert link_scan.normalised(text) == normalised


def test_hosts_compare_in_their_ascii_form_and_subdomains_count():
    assert link_scan.host_allowed("xn--e1afmkfd.xn--p1ai", ["пример.рф"])
    assert link_scan.host_allowed("docs.acme.io", ["*.acme.io"])
    assert not link_scan.host_allowed("аcme.io", ["acme.io"])  # a Cyrillic "а"
    assert not link_scan.host_allowed("evilacme.io", ["acme.io"])
    assert not link_scan.host_allowed("", ["acme.io"])
