"""The Segment-compatible ingestion API, as a client app uses it."""

import gzip
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from django.test import override_settings
from django.utils import timezone

from onboarding.models import AnonymousIdentity, Contact, Event
from tenancy import services
from tenancy.models import EndUser
from tests.conftest import basic_auth

pytestmark = pytest.mark.django_db


def test_track_is_stored_once_committed(segment, tenant):
    workspace, _, _ = tenant
    response = segment(
        "track",
        {
            "userId": "u-1",
            "event": "Project Created",
            "properties": {"plan": "pro", "seats": 3},
            "messageId": "m-1",
            "context": {"library": {"name": "analytics-python", "version": "2.4.0"}},
        },
    )

    assert response.status_code == 200
    assert response.json() == {"success": True}
    event = Event.objects.get(workspace=workspace)
    assert (event.type, event.name, event.message_id, event.user_id) == (
        "track",
        "Project Created",
        "m-1",
        "u-1",
    )
    assert event.properties == {"plan": "pro", "seats": 3}
    assert event.context == {"library": {"name": "analytics-python", "version": "2.4.0"}}
    assert event.end_user.external_id == "u-1"


def test_identify_splits_contact_data_from_features(segment, tenant):
    workspace, _, _ = tenant
    response = segment(
        "identify",
        {
            "userId": "u-1",
            "traits": {
                "email": "Ada@Example.com",
                "phone": "+1 415-555-2671",
                "firstName": "Ada",
                "lastName": "Lovelace",
                "address": {"city": "London"},
                "persona": "admin",
                "companySize": "11-50",
                "signup_source": "ads",
                "plan": "trial",
            },
            "context": {"ip": "203.0.113.9", "traits": {"email": "Ada@Example.com", "plan": "trial"}},
        },
    )

    assert response.status_code == 200
    end_user = EndUser.objects.get(workspace=workspace, external_id="u-1")
    assert end_user.traits == {
        "persona": "admin",
        "companySize": "11-50",
        "signup_source": "ads",
        "plan": "trial",
    }
    assert (end_user.persona, end_user.company_size, end_user.signup_source) == ("admin", "11-50", "ads")
    contact = Contact.objects.get(end_user=end_user)
    assert contact.email == "Ada@Example.com"
    assert contact.phone == "+14155552671"
    assert (contact.first_name, contact.last_name, contact.name) == ("Ada", "Lovelace", "Ada Lovelace")
    assert contact.address == {"city": "London"}
    # The stored event keeps features only: no contact data, no IP address.
    event = Event.objects.get(workspace=workspace, type="identify")
    stored = orjson.dumps({"properties": event.properties, "context": event.context}).decode()
    assert "Ada" not in stored and "415" not in stored and "203.0.113.9" not in stored
    assert event.context == {"traits": {"plan": "trial"}}


def test_identify_merges_traits_over_calls(segment, tenant):
    workspace, _, _ = tenant
    segment("identify", {"userId": "u-1", "traits": {"persona": "admin", "plan": "trial"}})
    segment("identify", {"userId": "u-1", "traits": {"plan": "pro", "phone": "not a phone"}})

    end_user = EndUser.objects.get(workspace=workspace, external_id="u-1")
    assert end_user.traits == {"persona": "admin", "plan": "pro"}
    assert end_user.contact.phone == "not a phone"


def test_identify_drops_an_invalid_email_but_keeps_the_rest(segment, tenant):
    workspace, _, _ = tenant
    segment("identify", {"userId": "u-1", "traits": {"email": "nope", "name": "Ada"}})

    contact = Contact.objects.get(end_user__workspace=workspace)
    assert (contact.email, contact.name) == ("", "Ada")


def test_page_screen_and_group_calls(segment, tenant):
    workspace, _, _ = tenant
    assert (
        segment(
            "page",
            {"anonymousId": "a-1", "name": "Pricing", "category": "Docs", "properties": {"path": "/pricing"}},
        ).status_code
        == 200
    )
    assert segment("screen", {"userId": "u-1", "name": "Home"}).status_code == 200
    assert (
        segment(
            "group", {"userId": "u-1", "groupId": "g-9", "traits": {"name": "Initech", "employees": 40}}
        ).status_code
        == 200
    )

    page = Event.objects.get(workspace=workspace, type="page")
    assert (page.name, page.properties, page.anonymous_id) == (
        "Pricing",
        {"category": "Docs", "path": "/pricing"},
        "a-1",
    )
    assert Event.objects.get(workspace=workspace, type="screen").name == "Home"
    group = Event.objects.get(workspace=workspace, type="group")
    assert (group.group_id, group.properties) == ("g-9", {"name": "Initech", "employees": 40})
    end_user = EndUser.objects.get(workspace=workspace, external_id="u-1")
    assert end_user.group_id == "g-9"
    assert end_user.traits["group"] == {"id": "g-9", "name": "Initech", "employees": 40}


def test_batch_stores_every_call_type(api_client, tenant):
    workspace, write_key, _ = tenant
    batch = [
        {"type": "identify", "userId": "u-1", "traits": {"persona": "dev"}},
        {"type": "track", "userId": "u-1", "event": "Signed Up"},
        {"type": "page", "userId": "u-1", "name": "Docs"},
        {"type": "screen", "userId": "u-1", "name": "Settings"},
        {"type": "group", "userId": "u-1", "groupId": "g-1"},
        {"type": "alias", "userId": "u-1", "previousId": "a-1"},
    ]
    response = api_client.post(
        "/v1/batch", {"batch": batch}, format="json", HTTP_AUTHORIZATION=basic_auth(write_key)
    )

    assert response.status_code == 200, response.content
    assert response.json() == {"success": True}
    assert sorted(Event.objects.filter(workspace=workspace).values_list("type", flat=True)) == sorted(
        ["identify", "track", "page", "screen", "group", "alias"]
    )
    assert EndUser.objects.filter(workspace=workspace).count() == 1


def test_import_endpoint_is_an_alias_of_batch(api_client, tenant):
    workspace, write_key, _ = tenant
    response = api_client.post(
        "/v1/import",
        {"batch": [{"type": "track", "userId": "u-1", "event": "Imported"}]},
        format="json",
        HTTP_AUTHORIZATION=basic_auth(write_key),
    )
    assert response.status_code == 200
    assert Event.objects.filter(workspace=workspace, name="Imported").count() == 1


# --- Authentication -------------------------------------------------------------------------


def test_write_key_in_the_body_authenticates(api_client, tenant):
    workspace, write_key, _ = tenant
    response = api_client.post(
        "/v1/track", {"writeKey": write_key, "userId": "u-1", "event": "Body Key"}, format="json"
    )
    assert response.status_code == 200
    assert Event.objects.filter(workspace=workspace, name="Body Key").count() == 1


def test_secret_key_may_send_events_too(segment, tenant):
    workspace, _, secret_key = tenant
    assert segment("track", {"userId": "u", "event": "Server Side"}, key=secret_key).status_code == 200
    assert Event.objects.filter(workspace=workspace, name="Server Side").exists()


@pytest.mark.parametrize(
    ("headers", "body_key", "detail"),
    [
        ({}, None, "Authentication credentials were not provided."),
        ({"HTTP_AUTHORIZATION": basic_auth("wk_not_a_real_key")}, None, "Unknown API key."),
        ({}, "wk_not_a_real_key", "Unknown API key."),
        (
            {"HTTP_AUTHORIZATION": "Basic !!!notbase64"},
            None,
            "Authorization header is not valid Basic credentials.",
        ),
    ],
)
def test_missing_or_unknown_key_is_401_and_stores_nothing(api_client, tenant, headers, body_key, detail):
    body = {"userId": "u-1", "event": "Nope"}
    if body_key:
        body["writeKey"] = body_key
    response = api_client.post("/v1/track", body, format="json", **headers)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == 'Basic realm="api"'
    assert response.json()["detail"] == detail
    assert response.json()["success"] is False
    assert Event.objects.count() == 0


def test_revoked_key_is_refused_at_once(segment, tenant):
    workspace, _, _ = tenant
    assert segment("track", {"userId": "u", "event": "Before"}).status_code == 200
    services.api_key_revoke(api_key=workspace.api_keys.get(kind="write"))

    response = segment("track", {"userId": "u", "event": "After"})

    assert response.status_code == 401
    assert response.json()["detail"] == "This API key was revoked."
    assert list(Event.objects.values_list("name", flat=True)) == ["Before"]


def test_key_of_one_workspace_never_writes_into_another(segment, tenant, other_tenant):
    workspace, _, _ = tenant
    other, other_write_key, _ = other_tenant
    segment("identify", {"userId": "shared-id", "traits": {"persona": "a"}, "messageId": "same"})
    segment(
        "identify",
        {"userId": "shared-id", "traits": {"persona": "b"}, "messageId": "same"},
        key=other_write_key,
    )

    # Same userId and messageId in two workspaces: two profiles, two events, no cross-talk.
    mine = EndUser.objects.get(workspace=workspace, external_id="shared-id")
    theirs = EndUser.objects.get(workspace=other, external_id="shared-id")
    assert (mine.persona, theirs.persona) == ("a", "b")
    assert Event.objects.get(workspace=workspace).end_user == mine
    assert Event.objects.get(workspace=other).end_user == theirs


def test_key_last_used_is_recorded(segment, tenant):
    workspace, _, _ = tenant
    api_key = workspace.api_keys.get(kind="write")
    assert api_key.last_used_at is None
    segment("track", {"userId": "u", "event": "E"})
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


# --- Dedupe and time ------------------------------------------------------------------------


def test_retried_message_id_is_accepted_and_ignored(segment, tenant):
    workspace, _, _ = tenant
    call = {"userId": "u-1", "event": "Paid", "messageId": "retry-me", "properties": {"n": 1}}
    first = segment("track", call)
    retry = segment("track", {**call, "properties": {"n": 2}})

    assert (first.status_code, retry.status_code) == (200, 200)
    assert list(Event.objects.filter(workspace=workspace).values_list("properties", flat=True)) == [{"n": 1}]


def test_duplicate_message_ids_inside_one_batch_count_once(api_client, tenant):
    workspace, write_key, _ = tenant
    batch = [{"type": "track", "userId": "u", "event": f"E{n}", "messageId": "dup"} for n in range(3)]
    response = api_client.post(
        "/v1/batch", {"batch": batch}, format="json", HTTP_AUTHORIZATION=basic_auth(write_key)
    )
    assert response.status_code == 200
    assert list(Event.objects.filter(workspace=workspace).values_list("name", flat=True)) == ["E0"]


def test_retry_without_message_id_but_with_timestamp_is_recognised(segment, tenant):
    workspace, _, _ = tenant
    call = {"userId": "u", "event": "E", "timestamp": "2026-01-01T10:00:00Z"}
    segment("track", {**call, "sentAt": "2026-01-01T10:00:01Z"})
    segment("track", {**call, "sentAt": "2026-01-01T10:00:09Z"})  # a retry, sent later
    assert Event.objects.filter(workspace=workspace).count() == 1


def test_calls_without_message_id_or_timestamp_are_distinct_events(segment, tenant):
    workspace, _, _ = tenant
    segment("track", {"userId": "u", "event": "Clicked"})
    segment("track", {"userId": "u", "event": "Clicked"})
    assert Event.objects.filter(workspace=workspace).count() == 2


def test_clock_skew_is_corrected_with_sent_at(segment, tenant):
    workspace, _, _ = tenant
    before = timezone.now()
    # The device clock is 1 hour fast; the event happened 10 s before it was sent.
    segment(
        "track",
        {
            "userId": "u",
            "event": "Skewed",
            "timestamp": "2030-01-01T12:00:00Z",
            "sentAt": "2030-01-01T12:00:10Z",
        },
    )
    after = timezone.now()

    event = Event.objects.get(workspace=workspace)
    assert before - timedelta(seconds=10) <= event.timestamp <= after - timedelta(seconds=10)
    assert event.timestamp == event.received_at - timedelta(seconds=10)
    assert event.original_timestamp == datetime(2030, 1, 1, 12, tzinfo=UTC)
    assert event.sent_at == datetime(2030, 1, 1, 12, 0, 10, tzinfo=UTC)


def test_timestamp_without_sent_at_is_kept_and_missing_timestamp_is_receipt_time(segment, tenant):
    workspace, _, _ = tenant
    segment("track", {"userId": "u", "event": "Historic", "timestamp": "2025-05-05T05:05:05+02:00"})
    segment("track", {"userId": "u", "event": "Now"})

    historic = Event.objects.get(workspace=workspace, name="Historic")
    assert historic.timestamp == datetime(2025, 5, 5, 3, 5, 5, tzinfo=UTC)
    now = Event.objects.get(workspace=workspace, name="Now")
    assert now.timestamp == now.received_at
    assert now.original_timestamp is None


def test_batch_level_sent_at_and_context_apply_to_each_event(api_client, tenant):
    workspace, write_key, _ = tenant
    body = {
        "batch": [
            {
                "type": "track",
                "userId": "u",
                "event": "E",
                "timestamp": "2030-01-01T00:00:00Z",
                "context": {"page": {"path": "/x"}},
            }
        ],
        "sentAt": "2030-01-01T00:01:00Z",
        "context": {"library": {"name": "analytics.js"}},
    }
    api_client.post("/v1/batch", body, format="json", HTTP_AUTHORIZATION=basic_auth(write_key))

    event = Event.objects.get(workspace=workspace)
    assert event.timestamp == event.received_at - timedelta(minutes=1)
    assert event.context == {"library": {"name": "analytics.js"}, "page": {"path": "/x"}}


# --- Bad input ------------------------------------------------------------------------------


def _post_raw(api_client, path, data: bytes, key, **headers):
    return api_client.generic(
        "POST", path, data, content_type="application/json", HTTP_AUTHORIZATION=basic_auth(key), **headers
    )


@pytest.mark.parametrize(
    ("body", "detail_start"),
    [
        (b'{"userId": "u", "event": ', "Malformed JSON"),
        (b"[1, 2]", "Request body must be a JSON object."),
    ],
)
def test_unparseable_bodies_are_400(api_client, tenant, body, detail_start):
    _, write_key, _ = tenant
    response = _post_raw(api_client, "/v1/track", body, write_key)
    assert response.status_code == 400
    assert response.json()["detail"].startswith(detail_start)
    assert response.json()["code"] == "parse_error"


@pytest.mark.parametrize(
    ("call_type", "body", "field", "reason"),
    [
        ("track", {"userId": "u"}, "event", "Field required"),
        ("track", {"event": "E"}, "userId", "userId or anonymousId is required"),
        ("track", {"userId": "u", "event": 5}, "event", "Input should be a valid string"),
        (
            "track",
            {"userId": "u", "event": "E", "properties": [1]},
            "properties",
            "Input should be a valid dictionary",
        ),
        ("identify", {"userId": {"id": 1}}, "userId", "Input should be a valid string"),
        (
            "page",
            {"userId": "u", "timestamp": "yesterday"},
            "timestamp",
            "Input should be a valid datetime or date, input is too short",
        ),
        ("group", {"userId": "u"}, "groupId", "Field required"),
        ("alias", {"userId": "u"}, "previousId", "Field required"),
        ("track", {"userId": "u" * 256, "event": "E"}, "userId", "String should have at most 255 characters"),
        (
            "track",
            {"userId": "u", "event": "E", "properties": {"x": "a\u0000b"}},
            "(event)",
            "contains a NUL character (\\u0000), which cannot be stored",
        ),
    ],
)
def test_invalid_calls_name_the_field_and_the_reason(segment, call_type, body, field, reason):
    response = segment(call_type, body)

    assert response.status_code == 400
    payload = response.json()
    assert payload["success"] is False
    assert payload["errors"][0] == {"field": field, "reason": reason}
    assert Event.objects.count() == 0


def test_empty_body_names_the_missing_fields(api_client, tenant):
    _, write_key, _ = tenant
    response = _post_raw(api_client, "/v1/track", b"", write_key)
    assert response.status_code == 400
    assert {error["field"] for error in response.json()["errors"]} == {"event", "userId"}


def test_unknown_call_type_in_a_batch_is_rejected_by_index(api_client, tenant):
    _, write_key, _ = tenant
    response = api_client.post(
        "/v1/batch",
        {"batch": [{"type": "purchase", "userId": "u"}]},
        format="json",
        HTTP_AUTHORIZATION=basic_auth(write_key),
    )
    assert response.status_code == 400
    assert response.json()["rejected"][0]["index"] == 0
    assert response.json()["rejected"][0]["field"] == "type"
    assert "unknown call type 'purchase'" in response.json()["rejected"][0]["reason"]


def test_unknown_endpoint_is_404(api_client, tenant):
    _, write_key, _ = tenant
    response = api_client.post("/v1/purchase", {}, format="json", HTTP_AUTHORIZATION=basic_auth(write_key))
    assert response.status_code == 404


def test_batch_must_be_a_list(api_client, tenant):
    _, write_key, _ = tenant
    response = api_client.post(
        "/v1/batch", {"batch": {"type": "track"}}, format="json", HTTP_AUTHORIZATION=basic_auth(write_key)
    )
    assert response.status_code == 400
    assert response.json()["errors"] == [{"field": "batch", "reason": "required, a list of calls"}]


def test_partial_batch_keeps_every_valid_event_and_lists_each_rejection(api_client, tenant):
    workspace, write_key, _ = tenant
    batch = [
        {"type": "track", "userId": "u", "event": "Good 0"},
        {"type": "track", "userId": "u"},
        {"type": "identify", "userId": "u", "traits": {"persona": "pm"}},
        {"type": "page"},
        "not an object",
        {"type": "track", "anonymousId": "a", "event": "Good 5"},
    ]
    response = api_client.post(
        "/v1/batch", {"batch": batch}, format="json", HTTP_AUTHORIZATION=basic_auth(write_key)
    )

    assert response.status_code == 400
    payload = response.json()
    assert payload["accepted"] == 3
    assert [(item["index"], item["field"], item["reason"]) for item in payload["rejected"]] == [
        (1, "event", "Field required"),
        (3, "userId", "userId or anonymousId is required"),
        (4, "(event)", "must be a JSON object"),
    ]
    assert sorted(Event.objects.filter(workspace=workspace).values_list("name", flat=True)) == [
        "",
        "Good 0",
        "Good 5",
    ]
    assert EndUser.objects.get(workspace=workspace, external_id="u").persona == "pm"


@override_settings(INGEST_MAX_EVENT_BYTES=32 * 1024)
def test_single_call_over_32_kb_is_413(segment):
    response = segment("track", {"userId": "u", "event": "Big", "properties": {"blob": "x" * 33_000}})
    assert response.status_code == 413
    assert response.json()["detail"] == "Request body is larger than the limit of 32768 bytes (32 KB)."
    assert Event.objects.count() == 0


def test_batch_over_500_kb_is_413(api_client, tenant):
    _, write_key, _ = tenant
    batch = [
        {"type": "track", "userId": "u", "event": "E", "properties": {"blob": "x" * 30_000}}
        for _ in range(18)
    ]
    response = api_client.post(
        "/v1/batch", {"batch": batch}, format="json", HTTP_AUTHORIZATION=basic_auth(write_key)
    )
    assert response.status_code == 413
    assert response.json()["detail"] == "Request body is larger than the limit of 512000 bytes (500 KB)."
    assert Event.objects.count() == 0


def test_event_over_32_kb_inside_a_batch_is_rejected_alone(api_client, tenant):
    workspace, write_key, _ = tenant
    batch = [
        {"type": "track", "userId": "u", "event": "Small"},
        {"type": "track", "userId": "u", "event": "Huge", "properties": {"blob": "x" * 40_000}},
    ]
    response = api_client.post(
        "/v1/batch", {"batch": batch}, format="json", HTTP_AUTHORIZATION=basic_auth(write_key)
    )
    assert response.status_code == 400
    rejection = response.json()["rejected"][0]
    assert (rejection["index"], rejection["field"]) == (1, "(event)")
    assert rejection["reason"].endswith("the limit is 32768 bytes (32 KB)")
    assert list(Event.objects.filter(workspace=workspace).values_list("name", flat=True)) == ["Small"]


def test_gzip_bodies_are_accepted(api_client, tenant):
    workspace, write_key, _ = tenant
    body = gzip.compress(orjson.dumps({"batch": [{"type": "track", "userId": "u", "event": "Zipped"}]}))
    response = _post_raw(api_client, "/v1/batch", body, write_key, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 200
    assert Event.objects.filter(workspace=workspace, name="Zipped").count() == 1


def test_gzip_body_that_inflates_past_the_limit_is_413(api_client, tenant):
    _, write_key, _ = tenant
    bomb = gzip.compress(b'{"userId": "u", "event": "E", "properties": {"x": "' + b"a" * 5_000_000 + b'"}}')
    assert len(bomb) < 32 * 1024
    response = _post_raw(api_client, "/v1/track", bomb, write_key, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 413


def test_corrupt_gzip_is_400(api_client, tenant):
    _, write_key, _ = tenant
    response = _post_raw(api_client, "/v1/track", b"not gzip at all", write_key, HTTP_CONTENT_ENCODING="gzip")
    assert response.status_code == 400
    assert response.json()["detail"].startswith("Body is not valid gzip")


def test_unsupported_content_encoding_is_415(api_client, tenant):
    _, write_key, _ = tenant
    response = _post_raw(api_client, "/v1/track", b"{}", write_key, HTTP_CONTENT_ENCODING="br")
    assert response.status_code == 415


def test_numeric_user_ids_are_accepted_as_strings(segment, tenant):
    workspace, _, _ = tenant
    assert segment("track", {"userId": 42, "event": "E"}).status_code == 200
    assert EndUser.objects.get(workspace=workspace).external_id == "42"


def test_anonymous_only_calls_create_one_anonymous_profile(segment, tenant):
    workspace, _, _ = tenant
    segment("page", {"anonymousId": "device-1", "name": "Home"})
    segment("track", {"anonymousId": "device-1", "event": "Clicked CTA"})

    end_user = EndUser.objects.get(workspace=workspace)
    assert end_user.external_id is None
    assert list(
        AnonymousIdentity.objects.filter(end_user=end_user).values_list("anonymous_id", flat=True)
    ) == ["device-1"]
    assert end_user.events.count() == 2


# --- Browser and mobile SDKs ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "call_type"),
    [("t", "track"), ("i", "identify"), ("p", "page"), ("s", "screen"), ("g", "group"), ("a", "alias")],
)
def test_one_letter_paths_of_analytics_js_and_mobile_sdks(api_client, tenant, path, call_type):
    workspace, write_key, _ = tenant
    body = {
        "writeKey": write_key,
        "userId": "u",
        "event": "E",
        "groupId": "g",
        "previousId": "p",
        "type": call_type,
    }
    # analytics.js posts text/plain to avoid a CORS preflight, with the write key in the body.
    response = api_client.generic("POST", f"/v1/{path}", orjson.dumps(body), content_type="text/plain")
    assert response.status_code == 200
    assert Event.objects.get(workspace=workspace).type == call_type


def test_mobile_sdk_batch_path(api_client, tenant):
    workspace, write_key, _ = tenant
    response = api_client.post(
        "/v1/b",
        {"batch": [{"type": "track", "userId": "u", "event": "E"}]},
        format="json",
        HTTP_AUTHORIZATION=basic_auth(write_key),
    )
    assert response.status_code == 200
    assert Event.objects.filter(workspace=workspace).count() == 1


def test_browsers_on_any_site_may_send_events(api_client, tenant):
    preflight = api_client.options(
        "/v1/batch",
        HTTP_ORIGIN="https://app.customer.example",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization, content-type",
    )
    assert preflight.status_code == 200
    assert preflight["Access-Control-Allow-Origin"] == "*"
    assert "authorization" in preflight["Access-Control-Allow-Headers"]

    _, write_key, _ = tenant
    response = api_client.post(
        "/v1/track",
        {"writeKey": write_key, "userId": "u", "event": "E"},
        format="json",
        HTTP_ORIGIN="https://app.customer.example",
    )
    assert response["Access-Control-Allow-Origin"] == "*"
    # The admin is not opened to other sites.
    assert "Access-Control-Allow-Origin" not in api_client.get(
        "/admin/login/", HTTP_ORIGIN="https://evil.example"
    )
