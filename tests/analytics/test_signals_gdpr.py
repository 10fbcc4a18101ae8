"""GDPR export and erasure of survey signals (analytics.signals.gdpr), on the directory store and on
S3 through a local moto server: exactly the erased person's objects go, even when their user id is
the start of another person's; the export holds their payloads."""

import json
import uuid
from datetime import UTC, date, datetime

import boto3
import pytest

from analytics.signals import services
from analytics.signals.storage import signals_storage
from tenancy.models import EndUser
from tests.analytics.test_signals import S3_CREDENTIALS, post_signal, pre_signal, s3_endpoint
from tests.conftest import key_client

__all__ = ["s3_endpoint"]  # the moto server fixture, shared with test_signals


@pytest.fixture
def bucket(s3_endpoint):
    """A fresh bucket per test (test_signals' is named after the test, which parameters would share)."""
    name = f"gdpr-{uuid.uuid4().hex}"
    boto3.client(
        "s3",
        endpoint_url=s3_endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket=name)
    return name


# "u1" is the start of "u1-x": an object of u1's session "x-9" and one of u1-x's session "9" had the
# same name before the names encoded `-` in the user id.
SHORT, LONG = "u1", "u1-x"


@pytest.fixture(params=["directory", "s3"])
def store(request, settings, tmp_path):
    settings.ANALYTICS_ENVIRONMENT = "dev"
    if request.param == "directory":
        settings.SIGNALS_STORAGE_URL = str(tmp_path / "signals")
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        settings.SIGNALS_STORAGE_URL = f"s3://{request.getfixturevalue('bucket')}/feedback"
        settings.SIGNALS_S3_ENDPOINT_URL = endpoint
        settings.SIGNALS_S3_REGION = S3_CREDENTIALS["region"]
        settings.SIGNALS_S3_ACCESS_KEY_ID = settings.SIGNALS_S3_SECRET_ACCESS_KEY = "testing"
    return signals_storage()


def _send(write_key: str, payload: dict) -> None:
    response = key_client(write_key).post("/api/v1/signals", payload, format="json")
    assert response.status_code == 202, response.content


@pytest.fixture
def two_people(tenant, store):
    """u1 sends a pre and a post (session "x-9"), u1-x a pre and a post (session "9"), in the tenant."""
    workspace, write_key, _ = tenant
    for user_id in (SHORT, LONG):
        EndUser.objects.create(workspace=workspace, external_id=user_id)
    session = {SHORT: "x-9", LONG: "9"}
    for user_id in (SHORT, LONG):
        _send(
            write_key, pre_signal(user_id=user_id, session_id=session[user_id], intent=f"intent of {user_id}")
        )
        _send(
            write_key, post_signal(user_id=user_id, session_id=session[user_id], text=f"words of {user_id}")
        )
    return workspace


def _users_in_store(store, workspace_id: int) -> list[str]:
    return sorted(
        json.loads(store.get(key))["user_id"] for key in store.list_keys(f"signals/{workspace_id}/")
    )


def _erase(tenant, user_id: str):
    return key_client(tenant[2]).delete(f"/api/v1/users/{user_id}")


@pytest.mark.parametrize("erased, kept", [(SHORT, LONG), (LONG, SHORT)])
def test_erasure_deletes_exactly_the_persons_signals(tenant, store, two_people, erased, kept):
    assert _users_in_store(store, two_people.pk) == sorted([SHORT, SHORT, LONG, LONG])

    response = _erase(tenant, erased)

    assert response.status_code == 200, response.content
    assert _users_in_store(store, two_people.pk) == [kept, kept]


def test_objects_named_before_the_user_id_was_encoded_are_found_too(tenant, store, two_people):
    """An object named the old way (`u1-x-9-<uuid>.json` for u1's session x-9) is u1's, not u1-x's."""
    old_name = f"signals/{two_people.pk}/2026/03/10/pre/u1-x-9-{'a' * 32}.json"
    document = {**pre_signal(user_id=SHORT, session_id="x-9"), "correlation_key": "u1-x-9"}
    store.put(old_name, json.dumps(document).encode(), content_type="application/json")

    assert _erase(tenant, LONG).status_code == 200
    assert _users_in_store(store, two_people.pk) == [SHORT, SHORT, SHORT]

    assert _erase(tenant, SHORT).status_code == 200
    assert _users_in_store(store, two_people.pk) == []


def test_new_object_names_encode_a_dash_in_the_user_id(tenant, store, two_people):
    names = sorted(key.rsplit("/", 1)[-1][:-38] for key in store.list_keys(f"signals/{two_people.pk}/"))
    assert names == ["u1%2Dx-9", "u1%2Dx-9", "u1-x-9", "u1-x-9"]


def test_the_export_holds_the_persons_signal_payloads_only(tenant, store, two_people):
    response = key_client(tenant[2]).post(f"/api/v1/users/{SHORT}/data-export")

    assert response.status_code == 200
    bundle = json.loads(response.content)
    assert "signals" in bundle["sections"]
    signals = bundle["signals"]
    assert sorted((item["stage"], item["user_id"], item["session_id"]) for item in signals) == [
        ("post", SHORT, "x-9"),
        ("pre", SHORT, "x-9"),
    ]
    assert {item.get("intent") for item in signals if item["stage"] == "pre"} == {"intent of u1"}
    assert {item.get("text") for item in signals if item["stage"] == "post"} == {"words of u1"}


def test_erasing_a_person_without_signals_works(tenant, store, two_people):
    EndUser.objects.create(workspace=two_people, external_id="quiet")

    response = _erase(tenant, "quiet")

    assert response.status_code == 200
    assert response.json()["status"] == "erased"
    assert _users_in_store(store, two_people.pk) == sorted([SHORT, SHORT, LONG, LONG])


def test_another_workspaces_signals_of_the_same_user_id_stay(tenant, other_tenant, store, two_people):
    other_workspace, other_write_key, _ = other_tenant
    _send(other_write_key, pre_signal(user_id=SHORT, session_id="x-9"))

    assert _erase(tenant, SHORT).status_code == 200
    assert _users_in_store(store, other_workspace.pk) == [SHORT]


def test_written_reports_lose_the_erased_persons_feedback(tenant, store, two_people):
    today = datetime.now(UTC).date()
    services.signals_report_write(storage=store, workspace_id=two_people.pk, day=None)
    services.signals_report_write(storage=store, workspace_id=two_people.pk, day=today)
    services.signals_report_write(storage=store, workspace_id=two_people.pk, day=date(2020, 1, 1))
    far_day = store.get(f"reports/{two_people.pk}/2020-01-01/summary.json")

    assert _erase(tenant, SHORT).status_code == 200

    for label in ("all", today.isoformat()):
        summary = json.loads(store.get(f"reports/{two_people.pk}/{label}/summary.json"))
        assert [item["text"] for item in summary["feedback"]] == ["words of u1-x"]
        assert summary["counts"]["pairs"] == 1
        assert SHORT not in json.dumps(summary).replace("u1-x", "")
        assert "words of u1<" not in store.get(f"reports/{two_people.pk}/{label}/report.html").decode()
    assert store.get(f"reports/{two_people.pk}/2020-01-01/summary.json") == far_day  # not rewritten
