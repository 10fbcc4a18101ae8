"""One-click unsubscribe links (RFC 8058): signed, no login, GET confirms, POST withdraws; tampering fails."""

import pytest
from django.core import signing
from django.test import Client

from guardrails.models import ConsentRecord
from guardrails.policy import engine as policy
from guardrails.preferences import unsubscribe
from tenancy import tokens
from tenancy.models import AuditLog
from tests.factories import EndUserFactory

pytestmark = pytest.mark.django_db

ONE_CLICK = "List-Unsubscribe=One-Click"


@pytest.fixture
def ada():
    return EndUserFactory(external_id="ada", workspace__name="Acme")


@pytest.fixture
def browser():
    """A client that enforces CSRF, as a real mail client's POST would meet it."""
    return Client(enforce_csrf_checks=True)


def _path(end_user, channel="email", purpose="onboarding") -> str:
    url = unsubscribe.unsubscribe_url(end_user=end_user, channel=channel, purpose=purpose)
    return url.removeprefix("http://testserver-public.example")


def _one_click(browser, path):
    return browser.post(path, ONE_CLICK, content_type="application/x-www-form-urlencoded")


@pytest.fixture(autouse=True)
def _public_base_url(settings):
    settings.PUBLIC_BASE_URL = "http://testserver-public.example"


def test_the_url_is_absolute_on_the_public_base_url_and_the_headers_follow_rfc_8058(ada):
    url = unsubscribe.unsubscribe_url(end_user=ada, channel="email", purpose="marketing")

    assert url.startswith("http://testserver-public.example/u/")
    assert unsubscribe.list_unsubscribe_headers(end_user=ada, channel="email", purpose="marketing") == {
        "List-Unsubscribe": f"<{url}>",
        "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
    }


def test_get_shows_a_confirmation_form_and_changes_nothing(browser, ada):
    response = browser.get(_path(ada))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Stop receiving onboarding messages from Acme by Email?" in page
    assert '<form method="post">' in page
    assert '<input type="hidden" name="List-Unsubscribe" value="One-Click">' in page
    assert response["Cache-Control"] == "no-store"
    assert not ConsentRecord.objects.exists()


def test_a_one_click_post_withdraws_consent_without_login_or_csrf_token(browser, ada):
    response = _one_click(browser, _path(ada))

    assert response.status_code == 200
    assert "You are unsubscribed" in response.content.decode()
    record = ConsentRecord.objects.get()
    assert (record.end_user, record.channel, record.purpose, record.granted, record.source) == (
        ada,
        "email",
        "onboarding",
        False,
        "unsubscribe_link",
    )
    audit = AuditLog.objects.get(action="consent.withdrawn")
    assert (audit.workspace, audit.actor_label) == (ada.workspace, "end user (unsubscribe link)")
    assert policy.check(policy.NUDGE_SEND, ada, {"channel": "email", "purpose": "onboarding"}).codes == [
        "consent"
    ]
    assert policy.check(policy.NUDGE_SEND, ada, {"channel": "in_app", "purpose": "onboarding"}).allowed


def test_the_confirmation_form_s_own_post_works_too(browser, ada):
    response = browser.post(_path(ada), {"List-Unsubscribe": "One-Click"})

    assert response.status_code == 200
    assert ConsentRecord.objects.filter(granted=False).count() == 1


def test_a_second_post_records_nothing_more(browser, ada):
    _one_click(browser, _path(ada))
    response = _one_click(browser, _path(ada))

    assert response.status_code == 200
    assert ConsentRecord.objects.count() == 1


def test_a_marketing_link_withdraws_a_grant(browser, ada):
    ConsentRecord.objects.create(
        workspace=ada.workspace,
        end_user=ada,
        channel="email",
        purpose="marketing",
        granted=True,
        source="api",
    )

    _one_click(browser, _path(ada, purpose="marketing"))

    assert list(ConsentRecord.objects.order_by("pk").values_list("granted", flat=True)) == [True, False]


def test_a_post_without_the_one_click_body_changes_nothing(browser, ada):
    response = browser.post(_path(ada), "", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 400
    assert not ConsentRecord.objects.exists()


def test_other_methods_are_refused(browser, ada):
    assert browser.put(_path(ada)).status_code == 405
    assert not ConsentRecord.objects.exists()


def _token(end_user) -> str:
    return _path(end_user).removeprefix("/u/")


def _forged(
    payload: dict, salt: str = "guardrails.preferences.unsubscribe.v1", key: str | None = None
) -> str:
    return signing.dumps(payload, salt=salt, key=key, compress=False)


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(lambda token: token[:-1] + ("A" if token[-1] != "A" else "B"), id="modified signature"),
        pytest.param(lambda token: token.split(":")[0], id="signature removed"),
        pytest.param(lambda token: "x" + token, id="modified payload"),
        pytest.param(lambda token: "garbage", id="not a token"),
    ],
)
def test_a_tampered_link_is_refused_and_changes_nothing(browser, ada, mangle):
    path = "/u/" + mangle(_token(ada))

    assert browser.get(path).status_code == 400
    assert _one_click(browser, path).status_code == 400
    assert not ConsentRecord.objects.exists()


def test_a_payload_pointed_at_another_user_under_the_old_signature_is_refused(browser, ada):
    bob = EndUserFactory(workspace=ada.workspace)
    token = _token(ada)
    signature = token.rsplit(":", 1)[1]
    forged_payload = _forged({"w": ada.workspace_id, "u": bob.pk, "c": "email", "p": "onboarding"}).rsplit(
        ":", 1
    )[0]

    response = _one_click(browser, f"/u/{forged_payload}:{signature}")

    assert response.status_code == 400
    assert not ConsentRecord.objects.exists()


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(
            lambda ada: _forged(
                {"w": ada.workspace_id, "u": ada.pk, "c": "email", "p": "onboarding"},
                key="another-secret-key",
            ),
            id="another SECRET_KEY",
        ),
        pytest.param(
            lambda ada: _forged(
                {"w": ada.workspace_id, "u": ada.pk, "c": "email", "p": "onboarding"},
                salt="onboarding.end-user-token.v1",
            ),
            id="another salt",
        ),
        pytest.param(
            lambda ada: tokens.token_issue(end_user=ada)[0].removeprefix("ut_"), id="an end-user token"
        ),
        pytest.param(
            lambda ada: _forged({"w": ada.workspace_id, "u": ada.pk, "c": "fax", "p": "onboarding"}),
            id="unknown channel",
        ),
    ],
)
def test_a_foreign_token_is_refused(browser, ada, token):
    assert _one_click(browser, "/u/" + token(ada)).status_code == 400
    assert not ConsentRecord.objects.exists()


def test_a_genuine_link_naming_the_wrong_workspace_is_404(browser, ada):
    elsewhere = EndUserFactory()
    path = "/u/" + _forged({"w": elsewhere.workspace_id, "u": ada.pk, "c": "email", "p": "onboarding"})

    assert browser.get(path).status_code == 404
    assert _one_click(browser, path).status_code == 404
    assert not ConsentRecord.objects.exists()


def test_a_link_of_a_deleted_user_is_404(browser, ada):
    path = _path(ada)
    ada.delete()

    assert _one_click(browser, path).status_code == 404


def test_one_user_s_link_unsubscribes_only_that_user(browser, ada):
    bob = EndUserFactory(workspace=ada.workspace)

    _one_click(browser, _path(bob))

    assert list(ConsentRecord.objects.values_list("end_user", flat=True)) == [bob.pk]
