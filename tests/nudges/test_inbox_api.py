"""The in-app inbox: GET /api/v1/users/{user_id}/nudges and mark seen / clicked / dismissed, with
every isolation rule (another user's token, another user's nudge, another workspace)."""

from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from nudges.delivery import tracking
from nudges.models import Nudge
from tenancy import tokens
from tests.conftest import end_user_client, key_client, token_client
from tests.factories import EndUserFactory
from tests.nudges.factories import InAppNudgeFactory, NudgeFactory, TemplateVersionFactory, TriggerFactory

INBOX = "/api/v1/users/{}/nudges"
MARK = "/api/v1/users/{}/nudges/{}/{}"


@pytest.fixture
def ada(tenant):
    return EndUserFactory(workspace=tenant[0], external_id="ada")


@pytest.fixture
def bob(tenant):
    return EndUserFactory(workspace=tenant[0], external_id="bob")


@pytest.fixture
def trigger(tenant):
    return TriggerFactory(workspace=tenant[0], channels=["in_app"])


def _in_app(trigger, end_user, minutes_ago=0, **fields) -> Nudge:
    nudge = InAppNudgeFactory(trigger=trigger, end_user=end_user, **fields)
    created = timezone.now() - timedelta(minutes=minutes_ago)
    Nudge.objects.filter(pk=nudge.pk).update(created_at=created)
    nudge.created_at = created
    return nudge


def _comparable(item: dict) -> dict:
    """The item with its click link replaced by the nudge it names (tokens carry a timestamp)."""
    url = item["cta_url"]
    assert url.startswith("http://127.0.0.1:8000/n/c/")
    token = url.rsplit("/", 1)[1]
    return {**item, "cta_url": ("click link of", tracking.nudge_id_from(token, salt=tracking.CLICK_SALT))}


def _item(nudge: Nudge) -> dict:
    """The item as the API shows it, from the row as stored."""
    nudge.refresh_from_db()
    times = ("created_at", "sent_at", "seen_at", "clicked_at", "dismissed_at")
    return {
        "id": nudge.pk,
        "subject": nudge.subject,
        "body": nudge.body,
        "cta_text": nudge.cta_text,
        "cta_url": ("click link of", nudge.pk),
        "ui_component": nudge.ui_component,
        "status": nudge.status,
        **{name: getattr(nudge, name).isoformat() if getattr(nudge, name) else None for name in times},
    }


# --- GET -------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_inbox_lists_the_users_sent_in_app_nudges_newest_first(server, trigger, ada, bob):
    older = _in_app(trigger, ada, minutes_ago=10, status="opened", subject="Older")
    newer = _in_app(trigger, ada, minutes_ago=1, subject="Newer")
    _in_app(trigger, ada, status="queued", sent_at=None)
    _in_app(trigger, ada, status="suppressed", sent_at=None)
    _in_app(trigger, ada, status="failed")
    _in_app(trigger, ada, dismissed_at=timezone.now())
    _in_app(trigger, bob)
    NudgeFactory(trigger=trigger, end_user=ada)  # an email

    response = server.get(INBOX.format("ada"))

    assert response.status_code == 200
    body = response.json()
    assert body["next"] is None
    assert [_comparable(item) for item in body["results"]] == [_item(newer), _item(older)]


@pytest.mark.django_db
def test_dismissed_nudges_only_when_asked_and_a_nudge_without_a_link_has_no_cta_url(server, trigger, ada):
    dismissed = _in_app(trigger, ada, dismissed_at=timezone.now(), cta_url="", cta_text="")

    assert server.get(INBOX.format("ada")).json()["results"] == []
    [item] = server.get(INBOX.format("ada"), {"include_dismissed": "true"}).json()["results"]
    assert (item["id"], item["cta_url"]) == (dismissed.pk, None)


@pytest.mark.django_db
def test_the_inbox_pages_back_with_its_next_link(server, trigger, ada):
    nudges = [_in_app(trigger, ada, minutes_ago=minutes) for minutes in range(5)]

    first = server.get(INBOX.format("ada"), {"limit": 2}).json()
    second = server.get(first["next"]).json()
    third = server.get(second["next"]).json()

    assert [item["id"] for item in first["results"] + second["results"] + third["results"]] == [
        nudge.pk for nudge in nudges
    ]
    assert first["next"] == f"/api/v1/users/ada/nudges?limit=2&before={nudges[1].pk}"
    assert third["next"] is None


@pytest.mark.django_db
def test_the_next_page_still_follows_when_its_cursor_was_dismissed_meanwhile(server, trigger, ada):
    nudges = [_in_app(trigger, ada, minutes_ago=minutes) for minutes in range(3)]
    first = server.get(INBOX.format("ada"), {"limit": 2}).json()
    server.post(MARK.format("ada", nudges[1].pk, "dismissed"))

    assert [item["id"] for item in server.get(first["next"]).json()["results"]] == [nudges[2].pk]


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("query", "field"), [({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"before": "x"}, "before")]
)
def test_bad_query_parameters_are_field_errors(server, ada, query, field):
    response = server.get(INBOX.format("ada"), query)

    assert response.status_code == 400
    assert response.json()["detail"] == "Invalid request."
    assert [error["field"] for error in response.json()["errors"]] == [field]


@pytest.mark.django_db
def test_the_users_own_token_reads_their_inbox_and_not_another_users(trigger, ada, bob):
    _in_app(trigger, ada)
    client = end_user_client(ada)

    assert client.get(INBOX.format("ada")).status_code == 200
    refused = client.get(INBOX.format("bob"))
    assert refused.status_code == 403
    assert refused.json() == {"detail": "This end-user token is for another user."}


@pytest.mark.django_db
def test_write_keys_unknown_users_and_no_credentials_are_refused(tenant, ada):
    write = key_client(tenant[1])
    server = key_client(tenant[2])

    assert write.get(INBOX.format("ada")).status_code == 403
    assert APIClient().get(INBOX.format("ada")).status_code in (401, 403)
    unknown = server.get(INBOX.format("nobody"))
    assert (unknown.status_code, unknown.json()) == (404, {"detail": "No such user: 'nobody'."})


@pytest.mark.django_db
def test_another_workspaces_key_sees_nothing_of_this_workspace(trigger, ada, other_tenant):
    nudge = _in_app(trigger, ada)
    EndUserFactory(workspace=other_tenant[0], external_id="ada")
    other = key_client(other_tenant[2])

    assert other.get(INBOX.format("ada")).json()["results"] == []
    response = other.post(MARK.format("ada", nudge.pk, "clicked"))
    assert response.status_code == 404
    nudge.refresh_from_db()
    assert (nudge.status, nudge.clicked_at) == ("delivered", None)


# --- Marks -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_seen_opens_the_nudge_once(trigger, ada):
    nudge = _in_app(trigger, ada)
    client = end_user_client(ada)

    first = client.post(MARK.format("ada", nudge.pk, "seen"))
    again = client.post(MARK.format("ada", nudge.pk, "seen"))

    assert first.status_code == again.status_code == 200
    nudge.refresh_from_db()
    assert (nudge.status, nudge.seen_at is not None, nudge.opened_at == nudge.seen_at) == (
        "opened",
        True,
        True,
    )
    assert _comparable(first.json()) == _item(nudge)
    assert list(nudge.events.filter(source="inbox").values_list("status", "detail")) == [
        ("opened", {"action": "seen"})
    ]


@pytest.mark.django_db
def test_clicked_clicks_the_nudge_and_rewards_its_variant_once(trigger, ada):
    version = TemplateVersionFactory(template__trigger=trigger, template__channel="in_app")
    nudge = _in_app(trigger, ada, template_version=version)
    client = end_user_client(ada)

    client.post(MARK.format("ada", nudge.pk, "clicked"))
    response = client.post(MARK.format("ada", nudge.pk, "clicked"))

    assert response.status_code == 200
    assert response.json()["status"] == "clicked"
    nudge.refresh_from_db()
    assert nudge.clicked_at is not None and nudge.seen_at is not None
    assert nudge.events.filter(source="inbox", status="clicked").count() == 2
    version.refresh_from_db()
    assert version.rewards == 1


@pytest.mark.django_db
def test_dismissed_takes_it_out_of_the_inbox_and_is_recorded(server, trigger, ada):
    nudge = _in_app(trigger, ada, status="clicked", clicked_at=timezone.now())

    response = server.post(MARK.format("ada", nudge.pk, "dismissed"))
    server.post(MARK.format("ada", nudge.pk, "dismissed"))

    assert response.status_code == 200
    nudge.refresh_from_db()
    assert nudge.status == "clicked"
    assert nudge.dismissed_at is not None and nudge.seen_at == nudge.dismissed_at
    assert response.json()["dismissed_at"] is not None
    assert list(nudge.events.filter(source="inbox").values_list("status", "detail")) == [
        ("opened", {"action": "dismissed"})
    ]
    assert server.get(INBOX.format("ada")).json()["results"] == []


@pytest.mark.django_db
@pytest.mark.parametrize("action", ["seen", "clicked", "dismissed"])
def test_a_nudge_outside_the_users_inbox_is_a_404_and_nothing_changes(server, trigger, ada, bob, action):
    bobs = _in_app(trigger, bob)
    email = NudgeFactory(trigger=trigger, end_user=ada)
    queued = _in_app(trigger, ada, status="queued", sent_at=None)
    bob_client = end_user_client(bob)

    for nudge_id in ("999999", "abc", str(bobs.pk), str(email.pk), str(queued.pk)):
        response = server.post(MARK.format("ada", nudge_id, action))
        assert response.status_code == 404
        assert response.json() == {"detail": f"No nudge '{nudge_id}' in the inbox of user 'ada'."}
    # Bob's own token, on Ada's path: refused before any lookup.
    assert bob_client.post(MARK.format("ada", bobs.pk, action)).status_code == 403
    for nudge in (bobs, email, queued):
        nudge.refresh_from_db()
        assert (nudge.seen_at, nudge.clicked_at, nudge.dismissed_at) == (None, None, None)
        assert not nudge.events.filter(source="inbox").exists()


@pytest.mark.django_db
def test_a_token_for_a_deleted_and_recreated_user_is_refused(trigger, ada):
    token, _ = tokens.token_issue(end_user=ada)
    ada.delete()
    EndUserFactory(workspace=trigger.workspace, external_id="ada")
    client = token_client(token)

    response = client.get(INBOX.format("ada"))

    assert response.status_code == 403
