"""Identity resolution: anonymous visitors, sign-up, new devices and alias, as Segment defines them."""

import pytest

from onboarding.models import AnonymousIdentity, Contact, Event
from tenancy.models import EndUser

pytestmark = pytest.mark.django_db


def _anonymous_ids(end_user):
    return sorted(end_user.anonymous_identities.values_list("anonymous_id", flat=True))


def test_sign_up_claims_the_anonymous_profile_with_its_history(segment, tenant):
    workspace, _, _ = tenant
    segment("page", {"anonymousId": "browser-1", "name": "Pricing"})
    segment("identify", {"userId": "u-1", "anonymousId": "browser-1", "traits": {"persona": "dev"}})
    segment("track", {"anonymousId": "browser-1", "event": "Still Anonymous Cookie"})

    end_user = EndUser.objects.get(workspace=workspace)
    assert end_user.external_id == "u-1"
    assert _anonymous_ids(end_user) == ["browser-1"]
    assert sorted(end_user.events.values_list("type", flat=True)) == ["identify", "page", "track"]


def test_known_user_on_a_new_device_folds_that_device_profile_in(segment, tenant):
    workspace, _, _ = tenant
    segment("identify", {"userId": "u-1", "anonymousId": "laptop", "traits": {"persona": "dev"}})
    segment("page", {"anonymousId": "phone", "name": "Home"})  # a separate anonymous profile so far
    assert EndUser.objects.filter(workspace=workspace).count() == 2

    segment("identify", {"userId": "u-1", "anonymousId": "phone"})

    end_user = EndUser.objects.get(workspace=workspace)
    assert end_user.external_id == "u-1"
    assert _anonymous_ids(end_user) == ["laptop", "phone"]
    assert end_user.events.count() == 3
    assert end_user.persona == "dev"


def test_alias_merges_the_previous_profile_into_the_user(segment, tenant):
    workspace, _, _ = tenant
    segment("identify", {"anonymousId": "anon-7", "traits": {"use_case": "analytics", "email": "a@b.co"}})
    segment("track", {"anonymousId": "anon-7", "event": "Viewed Docs"})
    segment("track", {"userId": "u-7", "event": "Signed Up"})

    response = segment("alias", {"userId": "u-7", "previousId": "anon-7"})

    assert response.status_code == 200
    end_user = EndUser.objects.get(workspace=workspace)
    assert end_user.external_id == "u-7"
    assert end_user.use_case == "analytics"
    assert Contact.objects.get(end_user=end_user).email == "a@b.co"
    assert sorted(Event.objects.filter(workspace=workspace).values_list("type", flat=True)) == [
        "alias",
        "identify",
        "track",
        "track",
    ]
    segment("track", {"anonymousId": "anon-7", "event": "Later"})
    assert Event.objects.get(name="Later").end_user == end_user


def test_alias_of_an_unseen_previous_id_links_it_for_later_events(segment, tenant):
    workspace, _, _ = tenant
    segment("alias", {"userId": "u-1", "previousId": "old-cookie"})
    segment("track", {"anonymousId": "old-cookie", "event": "E"})

    end_user = EndUser.objects.get(workspace=workspace)
    assert end_user.external_id == "u-1"
    assert AnonymousIdentity.objects.get(workspace=workspace, anonymous_id="old-cookie").end_user == end_user
    assert Event.objects.get(name="E").end_user == end_user


def test_alias_from_an_old_user_id(segment, tenant):
    workspace, _, _ = tenant
    segment("identify", {"userId": "old@id", "traits": {"persona": "owner"}})
    segment("alias", {"userId": "new-id", "previousId": "old@id"})

    end_user = EndUser.objects.get(workspace=workspace)
    assert (end_user.external_id, end_user.persona) == ("new-id", "owner")


def test_one_batch_with_anonymous_then_identified_calls(api_client, tenant):
    from tests.conftest import basic_auth

    workspace, write_key, _ = tenant
    batch = [
        {"type": "page", "anonymousId": "a-1", "name": "Landing"},
        {"type": "identify", "userId": "u-1", "anonymousId": "a-1", "traits": {"persona": "pm"}},
        {"type": "track", "userId": "u-1", "event": "Signed Up"},
        {"type": "page", "anonymousId": "a-2", "name": "Elsewhere"},
    ]
    response = api_client.post(
        "/v1/batch", {"batch": batch}, format="json", HTTP_AUTHORIZATION=basic_auth(write_key)
    )

    assert response.status_code == 200
    identified = EndUser.objects.get(workspace=workspace, external_id="u-1")
    assert identified.events.count() == 3
    assert _anonymous_ids(identified) == ["a-1"]
    other = EndUser.objects.get(workspace=workspace, anonymous_identities__anonymous_id="a-2")
    assert other.external_id is None
