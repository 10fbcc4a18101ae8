"""The client progress API: end-user tokens, state, writes with revisions, and every refusal."""

import threading
from datetime import timedelta

import httpx
import pytest
from django.db import connection
from rest_framework.test import APIClient

from onboarding.models import Enrollment, StepCompletion
from tenancy import services, tokens
from tests.conftest import basic_auth, key_client, token_client
from tests.onboarding.progress_setup import STEP_KEYS, enrol, published_path, track

ONBOARDING = "/api/v1/users/{}/onboarding"


@pytest.fixture
def enrolled(tenant):
    """(workspace, write_key, secret_key, enrollment of u-1)"""
    workspace, write_key, secret_key = tenant
    published_path(workspace)
    return workspace, write_key, secret_key, enrol(write_key, "u-1", workspace)


@pytest.fixture
def server(server, enrolled):
    """The secret-key client, with u-1 enrolled."""
    return server


def _token(secret_key: str, user_id: str) -> str:
    response = APIClient().post(f"/api/v1/users/{user_id}/token", HTTP_AUTHORIZATION=basic_auth(secret_key))
    assert response.status_code == 200, response.content
    return response.json()["token"]


def _steps(state: dict) -> dict[str, str]:
    return {step["key"]: step["status"] for step in state["steps"]}


def _assert_json_error(response, status: int, *fragments: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    for fragment in fragments:
        assert fragment in body["detail"], body
    return body


# --- Tokens -------------------------------------------------------------------------------------


def test_a_secret_key_issues_a_short_lived_token_for_one_user(server, enrolled, settings):
    settings.END_USER_TOKEN_LIFETIME = 600
    workspace, _, _, enrollment = enrolled
    before = tokens._now()

    response = server.post("/api/v1/users/u-1/token")

    assert response.status_code == 200
    body = response.json()
    claims = tokens.token_verify(body["token"])
    assert (claims.workspace_id, claims.end_user_id, claims.external_id) == (
        workspace.pk,
        enrollment.end_user_id,
        "u-1",
    )
    assert before + 599 <= claims.expires_at.timestamp() <= tokens._now() + 600
    assert body["expires_at"] == claims.expires_at.isoformat().replace("+00:00", "Z")


def test_a_token_reads_and_writes_its_own_user(enrolled):
    _, _, secret_key, _ = enrolled
    client = token_client(_token(secret_key, "u-1"))

    assert client.get(ONBOARDING.format("u-1")).status_code == 200
    response = client.post(ONBOARDING.format("u-1") + "/steps/connect/complete")
    assert response.status_code == 200
    assert _steps(response.json())["connect"] == "completed"


def test_a_token_for_one_user_is_refused_on_another(enrolled):
    workspace, write_key, secret_key, _ = enrolled
    enrol(write_key, "u-2", workspace)
    client = token_client(_token(secret_key, "u-1"))

    for method, url in (
        ("get", ONBOARDING.format("u-2")),
        ("post", ONBOARDING.format("u-2") + "/steps/connect/complete"),
        ("post", "/api/v1/users/u-2/token"),
    ):
        _assert_json_error(getattr(client, method)(url), 403, "")
    assert _assert_json_error(client.get(ONBOARDING.format("u-2")), 403)["detail"] == (
        "This end-user token is for another user."
    )
    assert not StepCompletion.objects.filter(enrollment__end_user__external_id="u-2").exists()


def test_an_end_user_token_cannot_issue_tokens(enrolled):
    _, _, secret_key, _ = enrolled
    response = token_client(_token(secret_key, "u-1")).post("/api/v1/users/u-1/token")
    _assert_json_error(response, 403, "End-user tokens cannot issue tokens")


def test_an_expired_token_is_refused(enrolled, monkeypatch):
    _, _, secret_key, _ = enrolled
    token = _token(secret_key, "u-1")
    issued = tokens._now()
    monkeypatch.setattr(tokens, "_now", lambda: issued + 15 * 60 + 1)

    response = token_client(token).get(ONBOARDING.format("u-1"))

    _assert_json_error(response, 401, "expired")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_a_token_is_valid_until_its_lifetime_ends(enrolled, monkeypatch):
    enrollment = enrolled[3]
    token, expires_at = tokens.token_issue(end_user=enrollment.end_user, lifetime=timedelta(seconds=30))
    monkeypatch.setattr(tokens, "_now", lambda: expires_at.timestamp() - 1)
    assert token_client(token).get(ONBOARDING.format("u-1")).status_code == 200
    monkeypatch.setattr(tokens, "_now", lambda: expires_at.timestamp())
    _assert_json_error(token_client(token).get(ONBOARDING.format("u-1")), 401, "expired")


@pytest.mark.parametrize(
    "mangle",
    [
        lambda token: token[:-2] + ("AA" if not token.endswith("AA") else "BB"),  # signature
        lambda token: token.replace("ut_", "ut_x", 1),  # payload
        lambda token: "ut_garbage",
    ],
    ids=["signature", "payload", "garbage"],
)
def test_a_tampered_token_is_refused(enrolled, mangle):
    _, _, secret_key, _ = enrolled
    response = token_client(mangle(_token(secret_key, "u-1"))).get(ONBOARDING.format("u-1"))
    _assert_json_error(response, 401, "not valid")


def test_a_token_signed_with_another_secret_key_is_refused(enrolled, settings):
    _, _, secret_key, _ = enrolled
    token = _token(secret_key, "u-1")
    settings.SECRET_KEY = "another-" + settings.SECRET_KEY
    _assert_json_error(token_client(token).get(ONBOARDING.format("u-1")), 401, "not valid")


def test_a_token_for_a_deleted_and_recreated_user_is_refused(enrolled):
    workspace, write_key, secret_key, enrollment = enrolled
    token = _token(secret_key, "u-1")
    enrollment.end_user.delete()
    enrol(write_key, "u-1", workspace)

    _assert_json_error(token_client(token).get(ONBOARDING.format("u-1")), 403, "another user")


def test_write_keys_are_refused(enrolled):
    _, write_key, _, _ = enrolled
    client = key_client(write_key)
    for method, url in (
        ("get", ONBOARDING.format("u-1")),
        ("post", ONBOARDING.format("u-1") + "/steps/connect/complete"),
        ("post", "/api/v1/users/u-1/token"),
    ):
        _assert_json_error(getattr(client, method)(url), 403, "Write keys may only send events")
    assert not StepCompletion.objects.exists()


def test_missing_unknown_and_revoked_credentials_are_refused(enrolled):
    workspace, _, secret_key, _ = enrolled
    _assert_json_error(APIClient().get(ONBOARDING.format("u-1")), 401, "credentials were not provided")
    client = token_client("sk_unknown")
    _assert_json_error(client.get(ONBOARDING.format("u-1")), 401, "Unknown API key")
    services.api_key_revoke(api_key=workspace.api_keys.get(kind="secret"))
    client.credentials(HTTP_AUTHORIZATION=basic_auth(secret_key))
    _assert_json_error(client.get(ONBOARDING.format("u-1")), 401, "revoked")


def test_a_secret_key_sees_only_its_own_workspace(enrolled, other_tenant):
    _, _, other_secret_key = other_tenant
    client = token_client(other_secret_key)
    _assert_json_error(client.get(ONBOARDING.format("u-1")), 404, "No such user: 'u-1'")
    _assert_json_error(client.post("/api/v1/users/u-1/token"), 404, "No such user: 'u-1'")


def test_a_token_for_an_unknown_user_is_not_issued(server):
    _assert_json_error(server.post("/api/v1/users/nobody/token"), 404, "No such user: 'nobody'")


# --- Reading -------------------------------------------------------------------------------------


def test_get_returns_the_state_with_its_revision_as_etag(server, enrolled):
    _, _, _, enrollment = enrolled

    response = server.get(ONBOARDING.format("u-1"))

    assert response.status_code == 200
    state = response.json()
    assert state["user_id"] == "u-1"
    assert state["enrollment_id"] == enrollment.pk
    assert state["path"] == {"key": "main", "name": "Main path", "version": 1}
    assert state["status"] == "active"
    assert state["current_step"] == "create-project"
    assert state["percent_complete"] == 0
    assert [step["key"] for step in state["steps"]] == STEP_KEYS
    assert response["ETag"] == f'"{state["revision"]}"'
    assert state["revision"] == enrollment.revision


def test_unknown_users_and_users_without_enrollment_get_404(server, enrolled):
    workspace, _, _, _ = enrolled
    _assert_json_error(server.get(ONBOARDING.format("nobody")), 404, "No such user: 'nobody'")
    _assert_json_error(
        server.post(ONBOARDING.format("nobody") + "/steps/connect/complete"), 404, "No such user"
    )
    services_end_user = workspace.end_users.create(external_id="not-enrolled")
    assert services_end_user.pk
    _assert_json_error(server.get(ONBOARDING.format("not-enrolled")), 404, "'not-enrolled' has no enrollment")


def test_a_returning_user_on_another_device_resumes_at_the_first_incomplete_step(enrolled):
    _, write_key, secret_key, _ = enrolled
    laptop = token_client(_token(secret_key, "u-1"))
    assert track(write_key, "u-1", "Project Created") == 200
    laptop.post(ONBOARDING.format("u-1") + "/steps/connect/complete")

    phone = token_client(_token(secret_key, "u-1"))  # later, another device, a new token
    state = phone.get(ONBOARDING.format("u-1")).json()

    assert state["current_step"] == "profile"
    assert _steps(state)["create-project"] == "completed"
    assert _steps(state)["connect"] == "completed"


# --- Writes --------------------------------------------------------------------------------------


def test_complete_a_step_bumps_the_revision(server, enrolled):
    _, _, _, enrollment = enrolled
    revision = enrollment.revision

    response = server.post(ONBOARDING.format("u-1") + "/steps/create-project/complete")

    assert response.status_code == 200
    state = response.json()
    assert state["revision"] == revision + 1
    assert response["ETag"] == f'"{revision + 1}"'
    assert state["current_step"] == "profile"
    assert _steps(state)["create-project"] == "completed"
    completion = StepCompletion.objects.get(enrollment=enrollment, step_key="create-project")
    assert completion.method == StepCompletion.Method.API


def test_an_unknown_step_is_named_in_a_404(server, enrolled):
    _, _, _, enrollment = enrolled
    for action in ("complete", "skip"):
        response = server.post(ONBOARDING.format("u-1") + f"/steps/no-such-step/{action}")
        _assert_json_error(response, 404, "'no-such-step'")
    assert Enrollment.objects.get(pk=enrollment.pk).revision == enrollment.revision


def test_only_optional_steps_can_be_skipped(server, enrolled):
    _, _, _, enrollment = enrolled

    body = _assert_json_error(
        server.post(ONBOARDING.format("u-1") + "/steps/connect/skip"), 400, "'connect'", "required"
    )
    assert body["errors"][0]["step"] == "connect"
    assert Enrollment.objects.get(pk=enrollment.pk).revision == enrollment.revision

    response = server.post(ONBOARDING.format("u-1") + "/steps/invite/skip")
    assert response.status_code == 200
    assert _steps(response.json())["invite"] == "skipped"


def test_back_returns_to_the_previous_step(server):
    server.post(ONBOARDING.format("u-1") + "/steps/create-project/complete")
    response = server.post(ONBOARDING.format("u-1") + "/back")
    assert response.status_code == 200
    assert response.json()["current_step"] == "create-project"


def test_answers_of_the_wrong_type_are_listed_by_step_and_field(server, enrolled):
    _, _, _, enrollment = enrolled
    response = server.post(
        ONBOARDING.format("u-1") + "/answers",
        {"step": "profile", "answers": {"role": "pilot", "team_size": "twelve", "newsletter": "yes"}},
        format="json",
    )

    body = _assert_json_error(response, 400, "profile.role", "profile.team_size")
    assert {(error["step"], error["field"]) for error in body["errors"]} == {
        ("profile", "role"),
        ("profile", "team_size"),
        ("profile", "newsletter"),
    }
    assert all(error["reason"] for error in body["errors"])
    assert Enrollment.objects.get(pk=enrollment.pk).answers == enrollment.answers


def test_valid_answers_are_saved_and_complete_the_form_step(server):
    response = server.post(
        ONBOARDING.format("u-1") + "/answers",
        {"step": "profile", "answers": {"role": "admin", "team_size": 12}},
        format="json",
    )
    assert response.status_code == 200, response.content
    state = response.json()
    assert state["answers"]["profile"] == {"role": "admin", "team_size": 12}
    assert _steps(state)["profile"] == "completed"


def test_a_number_beyond_64_bits_is_saved_as_sent(server):
    """JSON numbers have no size limit, and the body is parsed as it came."""
    response = server.post(
        ONBOARDING.format("u-1") + "/answers",
        {"step": "profile", "answers": {"role": "admin", "team_size": 10**30}},
        format="json",
    )

    assert response.status_code == 200, response.content
    assert response.json()["answers"]["profile"]["team_size"] == 10**30
    assert Enrollment.objects.get().answers["profile"]["team_size"] == 10**30


def test_answers_need_a_step_and_an_object(server):
    body = _assert_json_error(server.post(ONBOARDING.format("u-1") + "/answers", {}, format="json"), 400)
    assert {error["field"] for error in body["errors"]} == {"step", "answers"}
    _assert_json_error(
        server.post(ONBOARDING.format("u-1") + "/answers", {"step": "nope", "answers": {}}, format="json"),
        404,
        "'nope'",
    )


def test_completing_too_early_lists_each_missing_step_and_field(server, enrolled):
    _, _, _, enrollment = enrolled
    body = _assert_json_error(server.post(ONBOARDING.format("u-1") + "/complete"), 400, "not complete")
    steps_named = {error["step"] for error in body["errors"]}
    assert {"create-project", "profile", "connect"} <= steps_named
    assert "invite" not in steps_named
    assert ("profile", "role") in {(error["step"], error.get("field")) for error in body["errors"]}
    assert Enrollment.objects.get(pk=enrollment.pk).status == Enrollment.Status.ACTIVE


def test_the_whole_path_then_complete(server, enrolled):
    write_key = enrolled[1]
    assert track(write_key, "u-1", "Project Created") == 200
    url = ONBOARDING.format("u-1")
    assert (
        server.post(
            url + "/answers", {"step": "profile", "answers": {"role": "dev", "team_size": 3}}, format="json"
        ).status_code
        == 200
    )
    assert server.post(url + "/steps/invite/skip").status_code == 200
    assert server.post(url + "/steps/connect/complete").status_code == 200

    response = server.post(url + "/complete")

    assert response.status_code == 200, response.content
    state = response.json()
    assert state["status"] == "completed"
    assert state["percent_complete"] == 100
    assert state["completed_at"]
    # Completing again changes nothing but the revision.
    again = server.post(url + "/complete")
    assert again.status_code == 200
    assert again.json()["status"] == "completed"


def test_an_abandoned_enrollment_no_longer_changes(server, enrolled):
    _, _, _, enrollment = enrolled
    Enrollment.objects.filter(pk=enrollment.pk).update(status=Enrollment.Status.ABANDONED)

    body = _assert_json_error(
        server.post(ONBOARDING.format("u-1") + "/steps/connect/complete"), 409, "abandoned"
    )

    assert body["current"]["status"] == "abandoned"
    assert not StepCompletion.objects.filter(enrollment=enrollment, step_key="connect").exists()


# --- Revisions -----------------------------------------------------------------------------------


def test_patch_needs_if_match(server, enrolled):
    _, _, _, enrollment = enrolled
    response = server.patch(ONBOARDING.format("u-1"), {"current_step": "profile"}, format="json")
    _assert_json_error(response, 428, "If-Match")
    assert Enrollment.objects.get(pk=enrollment.pk).revision == enrollment.revision


def test_patch_with_the_current_revision_applies(server, enrolled):
    _, _, _, enrollment = enrolled
    response = server.patch(
        ONBOARDING.format("u-1"),
        {"answers": {"profile": {"role": "admin", "team_size": 4}}},
        format="json",
        HTTP_IF_MATCH=f'"{enrollment.revision}"',
    )
    assert response.status_code == 200, response.content
    state = response.json()
    assert state["answers"]["profile"] == {"role": "admin", "team_size": 4}
    assert _steps(state)["profile"] == "completed"
    assert state["current_step"] == "create-project"  # the first incomplete step
    assert state["revision"] == enrollment.revision + 1
    assert response["ETag"] == f'"{enrollment.revision + 1}"'

    # Moving forward skips the optional step in between.
    server.post(ONBOARDING.format("u-1") + "/steps/create-project/complete")
    response = server.patch(
        ONBOARDING.format("u-1"), {"current_step": "connect"}, format="json", HTTP_IF_MATCH=response["ETag"]
    )
    assert response.status_code == 409  # the POST above moved the revision on
    response = server.patch(
        ONBOARDING.format("u-1"), {"current_step": "connect"}, format="json", HTTP_IF_MATCH=response["ETag"]
    )
    assert response.status_code == 200, response.content
    assert response.json()["current_step"] == "connect"
    assert _steps(response.json())["invite"] == "skipped"


def test_patch_cannot_jump_over_a_required_step(server, enrolled):
    _, _, _, enrollment = enrolled
    response = server.patch(
        ONBOARDING.format("u-1"),
        {"current_step": "connect"},
        format="json",
        HTTP_IF_MATCH=f'"{enrollment.revision}"',
    )
    body = _assert_json_error(response, 400, "'create-project' is required")
    assert body["errors"][0]["step"] == "create-project"
    assert Enrollment.objects.get(pk=enrollment.pk).revision == enrollment.revision
    response = server.patch(
        ONBOARDING.format("u-1"),
        {"current_step": "nope"},
        format="json",
        HTTP_IF_MATCH=f'"{enrollment.revision}"',
    )
    _assert_json_error(response, 404, "'nope'")


def test_a_stale_revision_gets_409_with_the_current_state(server, enrolled):
    _, _, _, enrollment = enrolled
    stale = enrollment.revision
    server.post(ONBOARDING.format("u-1") + "/steps/create-project/complete")

    for response in (
        server.patch(
            ONBOARDING.format("u-1"), {"current_step": "connect"}, format="json", HTTP_IF_MATCH=f'"{stale}"'
        ),
        server.post(ONBOARDING.format("u-1") + "/steps/connect/complete", HTTP_IF_MATCH=str(stale)),
        server.post(ONBOARDING.format("u-1") + "/back", HTTP_IF_MATCH=f'W/"{stale}"'),
    ):
        body = _assert_json_error(response, 409, f"Revision {stale} is stale", f"revision {stale + 1}")
        assert body["current"]["revision"] == stale + 1
        assert body["current"]["current_step"] == "profile"
        assert response["ETag"] == f'"{stale + 1}"'
    current = Enrollment.objects.get(pk=enrollment.pk)
    assert (current.revision, current.current_step_key) == (stale + 1, "profile")


def test_bad_if_match_and_bodies_are_400(server, enrolled):
    _, _, _, enrollment = enrolled
    url = ONBOARDING.format("u-1")
    body = _assert_json_error(
        server.patch(url, {"current_step": "profile"}, format="json", HTTP_IF_MATCH='"abc"'), 400
    )
    assert body["errors"][0]["field"] == "If-Match"
    body = _assert_json_error(
        server.patch(url, {"step": "profile"}, format="json", HTTP_IF_MATCH=f'"{enrollment.revision}"'), 400
    )
    assert body["errors"] == [{"field": "step", "reason": "unknown field"}]
    _assert_json_error(server.patch(url, {}, format="json", HTTP_IF_MATCH=f'"{enrollment.revision}"'), 400)
    _assert_json_error(server.patch(url, "[1]", content_type="application/json", HTTP_IF_MATCH='"1"'), 400)
    _assert_json_error(server.post(url + "/answers", "{not json", content_type="application/json"), 400)
    _assert_json_error(server.put(url, {}, format="json"), 405)


# --- Real concurrency (PostgreSQL) ---------------------------------------------------------------


def _race(requests: list) -> list[httpx.Response]:
    """Send the requests at the same instant, one thread each."""
    barrier = threading.Barrier(len(requests))
    responses: list = [None] * len(requests)

    def send(index, method, url, kwargs):
        with httpx.Client(timeout=30) as client:
            barrier.wait()
            responses[index] = client.request(method, url, **kwargs)

    threads = [
        threading.Thread(target=send, args=(index, *request)) for index, request in enumerate(requests)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return responses


@pytest.mark.django_db(transaction=True)
def test_two_writers_with_the_same_revision_one_wins_the_other_gets_409(postgres, live_server, enrolled):
    _, _, secret_key, enrollment = enrolled
    url = live_server.url + ONBOARDING.format("u-1")
    headers = {"Authorization": f"Bearer {secret_key}", "If-Match": f'"{enrollment.revision}"'}

    for _round in range(5):
        revision = Enrollment.objects.get(pk=enrollment.pk).revision
        headers["If-Match"] = f'"{revision}"'
        responses = _race(
            [
                (
                    "PATCH",
                    url,
                    {"headers": headers, "json": {"answers": {"profile": {"role": "admin", "team_size": 1}}}},
                ),
                (
                    "PATCH",
                    url,
                    {"headers": headers, "json": {"answers": {"profile": {"role": "dev", "team_size": 2}}}},
                ),
            ]
        )
        codes = sorted(response.status_code for response in responses)
        assert codes == [200, 409], [response.text for response in responses]
        winner = next(response for response in responses if response.status_code == 200).json()
        loser = next(response for response in responses if response.status_code == 409).json()
        assert winner["revision"] == revision + 1
        assert loser["current"]["revision"] == revision + 1
        stored = Enrollment.objects.get(pk=enrollment.pk)
        assert stored.revision == revision + 1
        assert stored.answers["profile"] == winner["answers"]["profile"]
    connection.close()


@pytest.mark.django_db(transaction=True)
def test_concurrent_unconditional_writes_are_all_applied(postgres, live_server, enrolled):
    _, _, secret_key, enrollment = enrolled
    base = live_server.url + ONBOARDING.format("u-1")
    headers = {"Authorization": f"Bearer {secret_key}"}

    responses = _race(
        [
            ("POST", base + "/steps/connect/complete", {"headers": headers}),
            ("POST", base + "/steps/invite/skip", {"headers": headers}),
            (
                "POST",
                base + "/answers",
                {"headers": headers, "json": {"step": "profile", "answers": {"role": "dev", "team_size": 2}}},
            ),
        ]
    )

    assert [response.status_code for response in responses] == [200, 200, 200], [r.text for r in responses]
    stored = Enrollment.objects.get(pk=enrollment.pk)
    assert stored.revision == enrollment.revision + 3
    assert set(
        StepCompletion.objects.filter(enrollment=stored, reverted_at__isnull=True).values_list(
            "step_key", flat=True
        )
    ) == {"connect", "invite", "profile"}
    connection.close()
