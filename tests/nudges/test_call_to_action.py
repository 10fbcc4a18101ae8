"""Where a nudge's call to action leads: relative deep links to the workspace's product, never
to this server; and a nudge without a link has no button at all (never a null link)."""

import json

import pytest
from django.core.exceptions import ValidationError
from django.test import Client

from nudges.content import composer
from nudges.content.links import call_to_action_destination
from nudges.delivery import tracking
from nudges.gateways.base import PushTarget
from nudges.gateways.in_app import nudge_frame
from nudges.gateways.push import WebPushGateway
from nudges.inbox import inbox_item
from nudges.llm.personalize import Draft
from tests.factories import CANARY_FIRST_NAME, EndUserFactory, WorkspaceFactory
from tests.nudges import test_admin
from tests.nudges.factories import (
    InAppNudgeFactory,
    NudgeFactory,
    NudgeSettingsFactory,
    ProviderWithSecretFactory,
    PushSubscriptionFactory,
    TemplateVersionFactory,
    TriggerFactory,
)
from tests.nudges.providers import PushSubscriber, recipient_for, vapid_key_pair

pytestmark = pytest.mark.django_db

PRODUCT = "https://app.acme.example"
# The admin fixtures (Acme with its admin alice, signed in).
acme, alice, client = test_admin.acme, test_admin.alice, test_admin.client


def _path(url: str) -> str:
    return url.removeprefix("http://127.0.0.1:8000")


def _nudge(*, product_base_url: str = PRODUCT, cta_url: str = "/app/projects/new", **fields):
    workspace = WorkspaceFactory(product_base_url=product_base_url)
    return NudgeFactory(trigger=TriggerFactory(workspace=workspace), cta_url=cta_url, **fields)


def _message_for(nudge, *, channel: str, draft: Draft):
    return composer.message_for(
        nudge=nudge,
        channel=channel,
        draft=draft,
        recipient=recipient_for(),
        nudge_settings=NudgeSettingsFactory(workspace=nudge.workspace),
        end_user=nudge.end_user,
        purpose="onboarding",
    )


def _draft(cta_url: str) -> Draft:
    return Draft(
        subject="Stuck?", body="Most teams finish it in minutes.", cta_text="Show me", cta_url=cta_url
    )


# --- Relative deep links lead to the product -------------------------------------------------------


@pytest.mark.parametrize(
    ("base", "link", "destination"),
    [
        (PRODUCT, "/app/projects/new", "https://app.acme.example/app/projects/new"),
        (PRODUCT + "/", "/app/projects/new?tab=1", "https://app.acme.example/app/projects/new?tab=1"),
        ("https://acme.example/product", "/projects", "https://acme.example/product/projects"),
        ("", "/app/projects/new", ""),
        ("", "https://docs.acme.example/start", "https://docs.acme.example/start"),
        (PRODUCT, "//evil.example/x", ""),
        (PRODUCT, "javascript:alert(1)", ""),
        (PRODUCT, "", ""),
    ],
)
def test_a_link_resolves_against_the_product_base_url(base, link, destination):
    workspace = WorkspaceFactory.build(product_base_url=base)

    assert call_to_action_destination(workspace=workspace, link=link) == destination


def test_a_click_on_a_relative_deep_link_goes_to_the_product():
    nudge = _nudge()

    response = Client().get(_path(tracking.click_url(nudge_id=nudge.pk)))

    assert (response.status_code, response["Location"]) == (302, "https://app.acme.example/app/projects/new")


def test_a_click_on_a_relative_deep_link_without_a_product_base_url_is_not_sent_to_this_server():
    nudge = _nudge(product_base_url="")

    response = Client().get(_path(tracking.click_url(nudge_id=nudge.pk)))

    assert response.status_code == 404
    nudge.refresh_from_db()
    assert (nudge.status, nudge.clicked_at) == ("sent", None)


@pytest.mark.parametrize("url", ["ftp://files.acme.example", "javascript:alert(1)", "app.acme.example"])
def test_the_product_base_url_must_be_http_or_https(url):
    workspace = WorkspaceFactory(product_base_url=url)

    with pytest.raises(ValidationError) as refused:
        workspace.full_clean()

    assert list(refused.value.message_dict) == ["product_base_url"]


def test_the_product_base_url_is_edited_in_the_workspace_admin(acme, client):
    page = client.get(f"/admin/onboarding/workspace/{acme.pk}/change/").content.decode()
    assert 'name="product_base_url"' in page

    response = client.post(
        f"/admin/onboarding/workspace/{acme.pk}/change/",
        {"name": acme.name, "product_base_url": "javascript:alert(1)"},
    )

    assert response.status_code == 200
    assert "product_base_url" in response.context["adminform"].form.errors
    client.post(
        f"/admin/onboarding/workspace/{acme.pk}/change/", {"name": acme.name, "product_base_url": PRODUCT}
    )
    acme.refresh_from_db()
    assert acme.product_base_url == PRODUCT


# --- No link, no button ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("product_base_url", "cta_url"), [(PRODUCT, ""), ("", "/app/projects/new")], ids=["no link", "nowhere"]
)
def test_an_email_without_a_destination_has_no_button(product_base_url, cta_url):
    nudge = _nudge(product_base_url=product_base_url, cta_url=cta_url)

    message = _message_for(nudge, channel="email", draft=_draft(cta_url))

    assert (message.cta_text, message.cta_url) == ("", "")
    assert "Show me" not in message.html and "/n/c/" not in message.html
    assert "Show me" not in message.body and "/n/c/" not in message.body


def test_an_email_with_a_relative_deep_link_gets_the_tracked_button():
    nudge = _nudge()

    message = _message_for(nudge, channel="email", draft=_draft("/app/projects/new"))

    assert message.cta_text == "Show me"
    assert message.cta_url.startswith("http://127.0.0.1:8000/n/c/")
    assert f'href="{message.cta_url}">Show me</a>' in message.html


def test_a_step_without_a_deep_link_renders_a_draft_without_a_call_to_action():
    version = TemplateVersionFactory(cta_text="Show me", cta_url="{{ step_link }}")

    draft = composer.draft_for(version=version, variables={"step_link": ""}, channel="in_app")

    assert (draft.cta_text, draft.cta_url) == ("", "")


def test_the_in_app_item_of_a_nudge_without_a_link_has_no_call_to_action():
    nudge = InAppNudgeFactory(cta_text="Show me", cta_url="")

    item = inbox_item(nudge)

    assert (item["cta_text"], item["cta_url"]) == ("", None)


def test_the_in_app_frame_of_a_relative_link_without_a_product_base_url_has_no_call_to_action():
    nudge = _nudge(product_base_url="", channel="in_app", status="queued")
    message = _message_for(nudge, channel="in_app", draft=_draft("/app/projects/new"))

    frame = nudge_frame(message=message)

    assert (frame["cta_text"], frame["cta_url"]) == ("", None)


def test_a_push_without_a_link_carries_no_url(httpserver):
    private_key, _ = vapid_key_pair()
    end_user = EndUserFactory()
    provider = ProviderWithSecretFactory(
        workspace=end_user.workspace,
        channel="push",
        provider="webpush",
        settings={"vapid_subject": "mailto:push@acme.example.com"},
        secret=private_key,
    )
    browser = PushSubscriber()
    subscription = PushSubscriptionFactory(
        end_user=end_user, endpoint=httpserver.url_for("/push"), p256dh=browser.p256dh, auth=browser.auth
    )
    httpserver.expect_request("/push", method="POST").respond_with_data("", status=201)
    target = PushTarget(subscription.pk, subscription.endpoint, subscription.p256dh, subscription.auth)
    nudge = NudgeFactory(
        trigger=TriggerFactory(workspace=end_user.workspace), end_user=end_user, channel="push"
    )
    message = _message_for(nudge, channel="push", draft=_draft(""))

    WebPushGateway().send(provider=provider, message=message, recipient=recipient_for(push_targets=(target,)))

    [(request, _)] = httpserver.log
    payload = browser.decrypt(request.get_data())
    assert payload == {"title": "Stuck?", "body": "Most teams finish it in minutes.", "nudge_id": nudge.pk}
    assert CANARY_FIRST_NAME not in json.dumps(payload)
