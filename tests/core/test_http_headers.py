"""Response headers a browser acts on: nothing user-specific is stored by a cache, every page
carries a Content-Security-Policy and a Permissions-Policy (the admin's own inline styles go
through the policy's nonce), and only the endpoints browsers call with an end-user token or the
public write key answer cross-origin requests."""

import re
from pathlib import Path

import pytest
from django.test import Client
from rest_framework.test import APIClient

from tests.conftest import end_user_client, key_client, verified_client
from tests.factories import AdminUserFactory
from tests.onboarding.progress_setup import enrol, published_path

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]
ORIGIN = "https://app.customer.example"


@pytest.fixture
def enrolled(tenant):
    workspace, write_key, secret_key = tenant
    published_path(workspace)
    enrollment = enrol(write_key, "u-1", workspace)
    return workspace, secret_key, enrollment


# --- Cache-Control ---------------------------------------------------------------------------------


def test_user_specific_answers_are_never_stored_by_a_cache(enrolled):
    _, secret_key, enrollment = enrolled
    server, user = key_client(secret_key), end_user_client(enrollment.end_user)
    answers = {
        "token": server.post("/api/v1/users/u-1/token"),
        "progress": user.get("/api/v1/users/u-1/onboarding"),
        "preferences": user.get("/api/v1/users/u-1/preferences"),
        "inbox": user.get("/api/v1/users/u-1/nudges"),
        "data export": server.post("/api/v1/users/u-1/data-export"),
    }

    assert {name: response.status_code for name, response in answers.items()} == dict.fromkeys(answers, 200)
    for name, response in answers.items():
        assert "no-store" in response.get("Cache-Control", ""), name


def test_an_error_about_a_user_is_not_stored_either(tenant):
    response = key_client(tenant[2]).get("/api/v1/users/nobody/onboarding")

    assert response.status_code == 404
    assert "no-store" in response["Cache-Control"]


# --- Content-Security-Policy and Permissions-Policy ------------------------------------------------


def _policy(response) -> dict[str, list[str]]:
    directives = [part.split() for part in response["Content-Security-Policy"].split(";") if part.strip()]
    return {directive[0]: directive[1:] for directive in directives}


def test_api_answers_carry_the_policies(enrolled):
    response = end_user_client(enrolled[2].end_user).get("/api/v1/users/u-1/onboarding")

    policy = _policy(response)
    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]  # no nonce asked for, none given
    assert policy["object-src"] == policy["base-uri"] == policy["frame-ancestors"] == ["'none'"]
    assert "camera=()" in response["Permissions-Policy"]
    assert "geolocation=()" in response["Permissions-Policy"]


def test_admin_pages_carry_the_policy_and_their_inline_styles_its_nonce(tenant):
    workspace = tenant[0]
    version = published_path(workspace)
    client = verified_client(AdminUserFactory(username="root", is_superuser=True))

    for url in ("/admin/login/", "/admin/", f"/admin/paths/pathversion/{version.pk}/change/"):
        response = (Client() if url == "/admin/login/" else client).get(url)
        assert response.status_code == 200, url
        policy = _policy(response)
        assert "'unsafe-inline'" not in policy["script-src"] + policy["style-src"], url
        assert "camera=()" in response["Permissions-Policy"], url
        html = response.content.decode()
        nonces = {f"'nonce-{nonce}'" for nonce in re.findall(r'<(?:style|script)[^>]* nonce="([^"]+)"', html)}
        assert nonces <= set(policy["style-src"]) & set(policy["script-src"]), url
    assert nonces, "the path version page has an inline <style> of its own"


def test_no_template_has_inline_code_the_policy_would_block():
    """Inline <style> and <script> blocks need the request's nonce; style="" attributes and on*=
    handlers cannot have one (the policy allows neither)."""
    blocked = []
    for template in sorted([*ROOT.glob("templates/**/*.html"), *ROOT.glob("*/templates/**/*.html")]):
        text = template.read_text()
        for tag in re.findall(r"<(?:style|script)\b[^>]*>", text):
            if "src=" not in tag and 'type="application/json"' not in tag and ".csp_nonce }}" not in tag:
                blocked.append(f"{template.relative_to(ROOT)}: {tag}")
        blocked += [f"{template.relative_to(ROOT)}: {m}" for m in re.findall(r"\s(?:style|on\w+)=\"", text)]

    assert blocked == []


# --- CORS ------------------------------------------------------------------------------------------


def _preflight(path: str, method: str):
    return APIClient().options(
        path,
        HTTP_ORIGIN=ORIGIN,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="authorization",
    )


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/v1/batch", "POST"),
        ("/v1/t", "POST"),
        ("/api/v1/users/u-1/onboarding", "GET"),
        ("/api/v1/users/u-1/onboarding/steps/invite/complete", "POST"),
        ("/api/v1/users/u-1/preferences", "PUT"),
        ("/api/v1/users/u-1/nudges", "GET"),
        ("/api/v1/users/u-1/nudges/1/seen", "POST"),
        ("/api/v1/users/u-1/push-subscriptions", "POST"),
    ],
)
def test_endpoints_browsers_call_answer_any_origin(path, method):
    assert _preflight(path, method).get("Access-Control-Allow-Origin") == "*"


@pytest.mark.parametrize(
    ("path", "method"),
    [
        ("/api/v1/users/u-1/token", "POST"),
        ("/api/v1/users/u-1/data-export", "POST"),
        ("/api/v1/users/u-1", "DELETE"),
    ],
)
def test_secret_key_endpoints_answer_no_origin(path, method):
    assert "Access-Control-Allow-Origin" not in _preflight(path, method)
