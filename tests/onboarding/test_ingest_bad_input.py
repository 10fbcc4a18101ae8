"""Bad input to the Segment API answers 400 (or 413) naming the field, never 500, and a batch keeps
its valid events: out-of-range timestamps, deep nesting, NUL characters, over-long e-mail
addresses, oversized batches and the error bodies they would have bought."""

import gzip
import tracemalloc
import zlib
from datetime import UTC, datetime

import orjson
import pytest
from django.test import override_settings

from onboarding.models import Contact, Event
from tests.conftest import basic_auth

pytestmark = pytest.mark.django_db


def post_batch(api_client, key, body):
    return api_client.post("/v1/batch", body, format="json", HTTP_AUTHORIZATION=basic_auth(key))


def post_raw(api_client, key, data: bytes, **headers):
    return api_client.generic(
        "POST",
        "/v1/batch",
        data,
        content_type="application/json",
        HTTP_AUTHORIZATION=basic_auth(key),
        **headers,
    )


def stored_names(workspace) -> list[str]:
    return sorted(Event.objects.filter(workspace=workspace).values_list("name", flat=True))


def nested_json(depth: int) -> bytes:
    """The JSON of nested(depth), written out: json and orjson stop encoding long before 1000."""
    return b'{"child": ' * (depth - 1) + b'{"leaf": true}' + b"}" * (depth - 1)


def nested(depth: int) -> dict:
    value: dict = {"leaf": True}
    for _ in range(depth - 1):
        value = {"child": value}
    return value


# --- Timestamps -----------------------------------------------------------------------------------

OUT_OF_RANGE = [
    "9999-12-31T23:59:59-14:00",  # year 10000 in UTC: PostgreSQL stores it, Python cannot read it
    "0001-01-01T00:00:00+14:00",  # 1 BC in UTC
    "1999-12-31T23:59:59Z",
    "2100-01-01T00:00:00Z",
]


@pytest.mark.parametrize("field", ["timestamp", "originalTimestamp", "sentAt"])
@pytest.mark.parametrize("moment", OUT_OF_RANGE)
def test_a_time_outside_2000_to_2100_is_refused_with_its_field(segment, tenant, field, moment):
    workspace, _, _ = tenant

    response = segment("track", {"userId": "p", "event": "x", field: moment})

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [error["field"] for error in errors] == [field]
    assert "between 2000-01-01 and 2100-01-01" in errors[0]["reason"]
    assert Event.objects.filter(workspace=workspace).count() == 0


def test_the_edges_of_the_window_are_compared_in_utc(segment, tenant):
    workspace, _, _ = tenant

    def send(name, moment):
        return segment("track", {"userId": "p", "event": name, "timestamp": moment}).status_code

    assert send("first", "2000-01-01T14:00:00+14:00") == 200
    assert send("too early", "2000-01-01T13:59:59+14:00") == 400
    assert send("last", "2099-12-31T11:59:59-12:00") == 200
    assert send("too late", "2099-12-31T12:00:00-12:00") == 400

    times = dict(Event.objects.filter(workspace=workspace).values_list("name", "timestamp"))
    assert times == {
        "first": datetime(2000, 1, 1, tzinfo=UTC),
        "last": datetime(2099, 12, 31, 23, 59, 59, tzinfo=UTC),
    }


def test_a_batch_keeps_its_valid_events_and_names_the_poisoned_one(api_client, tenant):
    workspace, write_key, _ = tenant
    batch = [
        {"type": "track", "userId": "p", "event": "good", "timestamp": "2026-06-01T10:00:00Z"},
        {"type": "track", "userId": "p", "event": "poisoned", "timestamp": "9999-12-31T23:59:59-14:00"},
        {"type": "track", "userId": "p", "event": "also good"},
    ]

    response = post_batch(api_client, write_key, {"batch": batch})

    assert response.status_code == 400
    body = response.json()
    assert body["accepted"] == 2
    assert [(item["index"], item["field"]) for item in body["rejected"]] == [(1, "timestamp")]
    assert stored_names(workspace) == ["also good", "good"]


@pytest.mark.parametrize("offset", ["+14:01", "-14:01", "+16:00", "-23:59"])
def test_a_time_zone_offset_no_place_uses_is_refused(segment, tenant, offset):
    workspace, _, _ = tenant

    response = segment("track", {"userId": "p", "event": "x", "timestamp": f"2026-06-01T10:00:00{offset}"})

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [error["field"] for error in errors] == ["timestamp"]
    assert "±14:00" in errors[0]["reason"]
    assert Event.objects.filter(workspace=workspace).count() == 0


def test_the_widest_offsets_in_use_are_accepted(segment, tenant):
    workspace, _, _ = tenant
    assert (
        segment(
            "track", {"userId": "p", "event": "kiribati", "timestamp": "2026-06-01T14:00:00+14:00"}
        ).status_code
        == 200
    )
    assert (
        segment(
            "track", {"userId": "p", "event": "baker", "timestamp": "2026-06-01T00:00:00-12:00"}
        ).status_code
        == 200
    )
    times = dict(Event.objects.filter(workspace=workspace).values_list("name", "timestamp"))
    assert times == {
        "kiribati": datetime(2026, 6, 1, 0, 0, tzinfo=UTC),
        "baker": datetime(2026, 6, 1, 12, 0, tzinfo=UTC),
    }


def test_a_skew_correction_that_lands_outside_the_window_is_refused(segment, tenant):
    workspace, _, _ = tenant

    # Both in range, but a century apart: receivedAt - (sentAt - timestamp) is ~1926.
    response = segment(
        "track",
        {"userId": "p", "event": "x", "timestamp": "2000-01-02T00:00:00Z", "sentAt": "2099-12-31T00:00:00Z"},
    )

    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == ["timestamp"]
    assert Event.objects.filter(workspace=workspace).count() == 0


@pytest.mark.parametrize("sent_at", ["9999-12-31T23:59:59-14:00", "1970-01-01T00:00:00Z", "yesterday"])
def test_a_bad_batch_level_sent_at_is_a_400_naming_it(api_client, tenant, sent_at):
    workspace, write_key, _ = tenant
    body = {"batch": [{"type": "track", "userId": "p", "event": "x"}], "sentAt": sent_at}

    response = post_batch(api_client, write_key, body)

    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == ["sentAt"]
    assert Event.objects.filter(workspace=workspace).count() == 0


# --- Nesting, NUL characters, over-long values ----------------------------------------------------


@pytest.mark.parametrize("depth", [65, 254, 300, 1000])
def test_properties_nested_too_deep_reject_that_event_alone(api_client, tenant, depth):
    workspace, write_key, _ = tenant
    body = (
        b'{"batch": [{"type": "track", "userId": "p", "event": "flat"}, '
        b'{"type": "track", "userId": "p", "event": "deep", "properties": ' + nested_json(depth) + b"}]}"
    )

    response = post_raw(api_client, write_key, body)

    assert response.status_code == 400
    rejection = response.json()["rejected"][0]
    assert (rejection["index"], rejection["field"]) == (1, "properties")
    assert "nested more than 64 levels deep" in rejection["reason"]
    assert stored_names(workspace) == ["flat"]


def test_properties_nested_64_deep_are_stored(segment, tenant):
    workspace, _, _ = tenant
    assert segment("track", {"userId": "p", "event": "deep", "properties": nested(64)}).status_code == 200
    assert Event.objects.get(workspace=workspace).properties == nested(64)


def test_a_nul_character_in_the_batch_level_context_is_a_400_naming_it(api_client, tenant):
    workspace, write_key, _ = tenant
    body = {
        "batch": [{"type": "track", "userId": "p", "event": "x"}],
        "context": {"page": {"title": "a\u0000b"}},
    }

    response = post_batch(api_client, write_key, body)

    assert response.status_code == 400
    errors = response.json()["errors"]
    assert [error["field"] for error in errors] == ["context"]
    assert "NUL" in errors[0]["reason"]
    assert Event.objects.filter(workspace=workspace).count() == 0


def test_a_batch_level_context_nested_too_deep_is_a_400_naming_it(api_client, tenant):
    workspace, write_key, _ = tenant
    body = {"batch": [{"type": "track", "userId": "p", "event": "x"}], "context": nested(300)}

    response = post_batch(api_client, write_key, body)

    assert response.status_code == 400
    assert [error["field"] for error in response.json()["errors"]] == ["context"]
    assert Event.objects.filter(workspace=workspace).count() == 0


def long_email(length: int) -> str:
    domain = ".".join(["d" * 60] * 4) + ".example"
    return "a" * (length - len(domain) - 1) + "@" + domain


def test_an_e_mail_trait_longer_than_254_characters_is_refused_alone(api_client, tenant):
    workspace, write_key, _ = tenant
    email = long_email(290)
    assert len(email) == 290
    batch = [
        {"type": "identify", "userId": "long", "traits": {"email": email, "plan": "pro"}},
        {"type": "identify", "userId": "fine", "traits": {"email": long_email(254)}},
    ]

    response = post_batch(api_client, write_key, {"batch": batch})

    assert response.status_code == 400
    rejection = response.json()["rejected"][0]
    assert (rejection["index"], rejection["field"]) == (0, "traits.email")
    assert "254" in rejection["reason"]
    assert list(Contact.objects.filter(end_user__workspace=workspace).values_list("email", flat=True)) == [
        long_email(254)
    ]


# --- Amplification --------------------------------------------------------------------------------


def test_a_batch_of_more_than_2500_events_is_refused_before_validation(api_client, tenant):
    workspace, write_key, _ = tenant

    response = post_batch(api_client, write_key, {"batch": [{}] * 2501})

    assert response.status_code == 413
    assert response.json()["errors"] == [
        {"field": "batch", "reason": "holds 2501 events; the limit is 2500 per batch"}
    ]
    assert len(response.content) < 1000
    assert Event.objects.filter(workspace=workspace).count() == 0


def test_345_bytes_of_gzip_no_longer_buy_megabytes_of_errors(api_client, tenant):
    _, write_key, _ = tenant
    body = gzip.compress(b'{"batch": [' + b",".join([b"{}"] * 100_000) + b"]}", compresslevel=9)
    assert len(body) < 1000

    response = post_raw(api_client, write_key, body, HTTP_CONTENT_ENCODING="gzip")

    assert response.status_code == 413
    assert len(response.content) < 1000


def test_the_error_list_names_the_first_100_rejections_and_counts_the_rest(api_client, tenant):
    workspace, write_key, _ = tenant
    batch = [{"type": "track", "userId": "p", "event": "good"}] + [{}] * 2499

    response = post_batch(api_client, write_key, {"batch": batch})

    assert response.status_code == 400
    body = response.json()
    assert body["accepted"] == 1
    assert body["rejected_count"] == 2499
    assert [item["index"] for item in body["rejected"]] == list(range(1, 101))
    assert "2499 of 2500 events were rejected" in body["detail"]
    assert len(response.content) < 64 * 1024
    assert stored_names(workspace) == ["good"]


def test_a_gzip_bomb_is_inflated_no_further_than_the_limit(api_client, tenant):
    """Regression guard: 200 MB of zeros in ~200 KB of gzip; the parser stops inflating at the
    500 KB limit (zlib's max_length), so the request's memory stays in the low megabytes."""
    _, write_key, _ = tenant
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    chunk = b"\x00" * (1 << 20)
    bomb = b"".join(compressor.compress(chunk) for _ in range(200)) + compressor.flush()
    assert len(bomb) < 1024 * 1024

    tracemalloc.start()
    try:
        response = post_raw(api_client, write_key, bomb, HTTP_CONTENT_ENCODING="gzip")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert response.status_code == 413
    assert peak < 16 * 1024 * 1024


@override_settings(INGEST_MAX_BATCH_EVENTS=3)
def test_the_batch_cap_is_a_setting(api_client, tenant):
    _, write_key, _ = tenant
    batch = [{"type": "track", "userId": "p", "event": f"e{n}"} for n in range(4)]
    response = post_batch(api_client, write_key, {"batch": batch})
    assert response.status_code == 413
    assert orjson.loads(response.content)["errors"][0]["reason"] == "holds 4 events; the limit is 3 per batch"


def test_a_body_of_several_gzip_members_is_read_whole(api_client, tenant):
    """RFC 1952 lets a gzip file hold several members; each is inflated, none silently dropped."""
    workspace, write_key, _ = tenant
    first, second = (
        b'{"batch": [{"type": "track", "userId": "p", "event": "one"}, ',
        b'{"type": "track", "userId": "p", "event": "two"}]}',
    )

    response = post_raw(
        api_client, write_key, gzip.compress(first) + gzip.compress(second), HTTP_CONTENT_ENCODING="gzip"
    )

    assert response.status_code == 200
    assert stored_names(workspace) == ["one", "two"]


def test_gzip_members_that_inflate_past_the_limit_together_are_413(api_client, tenant):
    _, write_key, _ = tenant
    member = gzip.compress(b" " * 300_000)

    response = post_raw(api_client, write_key, member + member, HTTP_CONTENT_ENCODING="gzip")

    assert response.status_code == 413
