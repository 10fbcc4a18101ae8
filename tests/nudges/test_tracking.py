"""The signed click redirect (/n/c/<token>) and the email open pixel (/n/o/<token>.gif)."""

import pytest
from django.core import signing
from django.test import Client

from nudges.delivery import tracking
from nudges.delivery.views import PIXEL
from tests.nudges.factories import NudgeFactory, TemplateVersionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def nudge():
    version = TemplateVersionFactory()
    return NudgeFactory(
        trigger=version.template.trigger,
        template_version=version,
        cta_url="https://app.example.com/projects/new?from=nudge",
    )


def _path(url: str) -> str:
    return url.removeprefix("http://127.0.0.1:8000")


def test_the_links_are_absolute_on_the_public_base_url(nudge, settings):
    assert tracking.click_url(nudge_id=nudge.pk).startswith(f"{settings.PUBLIC_BASE_URL}/n/c/")
    assert tracking.open_pixel_url(nudge_id=nudge.pk).startswith(f"{settings.PUBLIC_BASE_URL}/n/o/")
    assert tracking.open_pixel_url(nudge_id=nudge.pk).endswith(".gif")


def test_a_click_records_it_and_redirects_to_the_stored_link(nudge):
    response = Client().get(_path(tracking.click_url(nudge_id=nudge.pk)))

    assert response.status_code == 302
    assert response["Location"] == "https://app.example.com/projects/new?from=nudge"
    assert response["Cache-Control"] == "no-store"
    assert response["Referrer-Policy"] == "no-referrer"
    nudge.refresh_from_db()
    assert nudge.status == "clicked"
    assert nudge.clicked_at is not None
    assert list(nudge.events.values_list("status", "source")) == [("clicked", "click")]
    nudge.template_version.refresh_from_db()
    assert nudge.template_version.rewards == 1


def test_a_second_click_is_recorded_and_rewards_nothing_more(nudge):
    url = _path(tracking.click_url(nudge_id=nudge.pk))
    Client().get(url)
    first_click = type(nudge).objects.get(pk=nudge.pk).clicked_at

    Client().get(url)

    nudge.refresh_from_db()
    assert nudge.clicked_at == first_click
    assert nudge.events.filter(status="clicked").count() == 2
    nudge.template_version.refresh_from_db()
    assert nudge.template_version.rewards == 1


def test_the_redirect_never_takes_a_url_from_the_request(nudge):
    response = Client().get(_path(tracking.click_url(nudge_id=nudge.pk)), {"next": "https://evil.example"})

    assert response["Location"] == "https://app.example.com/projects/new?from=nudge"


def test_a_nudge_without_a_link_is_a_404_not_this_server_s_home_page(nudge):
    type(nudge).objects.filter(pk=nudge.pk).update(cta_url="")

    response = Client().get(_path(tracking.click_url(nudge_id=nudge.pk)))

    assert response.status_code == 404
    assert not nudge.events.filter(status="clicked").exists()


def test_the_open_pixel_records_an_open_and_answers_a_gif(nudge):
    response = Client().get(_path(tracking.open_pixel_url(nudge_id=nudge.pk)))

    assert response.status_code == 200
    assert response["Content-Type"] == "image/gif"
    assert response.content == PIXEL
    assert response["Cache-Control"] == "no-store, private"
    nudge.refresh_from_db()
    assert (nudge.status, nudge.opened_at is not None) == ("opened", True)


def test_an_open_after_the_click_is_recorded_and_the_nudge_stays_clicked(nudge):
    Client().get(_path(tracking.click_url(nudge_id=nudge.pk)))

    Client().get(_path(tracking.open_pixel_url(nudge_id=nudge.pk)))

    nudge.refresh_from_db()
    assert nudge.status == "clicked"
    assert list(nudge.events.values_list("status", "source")) == [("clicked", "click"), ("opened", "pixel")]


def _tampered(token: str) -> str:
    value, _, signature = token.rpartition(":")
    return f"{value}:{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}"


def _tokens(nudge) -> dict[str, str]:
    click = tracking.click_url(nudge_id=nudge.pk).rsplit("/", 1)[1]
    pixel = tracking.open_pixel_url(nudge_id=nudge.pk).rsplit("/", 1)[1].removesuffix(".gif")
    return {"click": click, "pixel": pixel}


@pytest.mark.parametrize(
    "case",
    ["tampered signature", "other nudge's payload", "pixel token on the click link", "garbage", "deleted"],
)
def test_tampered_misused_or_stale_tokens_are_404s_and_record_nothing(nudge, case):
    tokens = _tokens(nudge)
    forged_payload = signing.dumps({"n": nudge.pk + 1}, salt="another salt", compress=False)
    token = {
        "tampered signature": _tampered(tokens["click"]),
        "other nudge's payload": forged_payload,
        "pixel token on the click link": tokens["pixel"],
        "garbage": "not-a-token",
        "deleted": tracking.click_url(nudge_id=987654).rsplit("/", 1)[1],
    }[case]

    response = Client().get(f"/n/c/{token}")
    pixel = Client().get(f"/n/o/{_tampered(tokens['pixel'])}.gif")

    assert (response.status_code, pixel.status_code) == (404, 404)
    nudge.refresh_from_db()
    assert (nudge.status, nudge.clicked_at, nudge.opened_at) == ("sent", None, None)
    assert not nudge.events.exists()
