"""The application as a real HTTP server serves it (config.serve's uvicorn settings): request
bodies in any framing, the client address, and what the server says about itself."""

import contextlib
import gzip
import http.client
import os
import re
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import httpx
import orjson
import pytest
from axes.models import AccessAttempt

from onboarding.models import Event
from tests.conftest import basic_auth
from tests.factories import AdminUserFactory
from tests.served import served

pytestmark = pytest.mark.django_db(transaction=True)

MEGABYTE = 1024 * 1024
ROOT = Path(__file__).resolve().parent.parent


def _chunks(body: bytes, size: int = 4096):
    for start in range(0, len(body), size):
        yield body[start : start + size]


def _post_chunked(port: int, path: str, body: bytes, headers: dict) -> tuple[int, dict]:
    """POST with Transfer-Encoding: chunked, as http.client sends an iterable body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("POST", path, body=_chunks(body), headers=headers, encode_chunked=True)
        response = connection.getresponse()
        return response.status, orjson.loads(response.read() or b"null")
    finally:
        connection.close()


def _batch(count: int) -> dict:
    return {
        "batch": [
            {"type": "track", "userId": "u-1", "event": "Chunked", "messageId": f"m-{number}"}
            for number in range(count)
        ]
    }


def test_a_chunked_batch_is_stored(tenant):
    workspace, write_key, _ = tenant
    with served() as port:
        status, body = _post_chunked(
            port,
            "/v1/batch",
            orjson.dumps(_batch(20)),
            {"Authorization": basic_auth(write_key), "Content-Type": "application/json"},
        )

    assert (status, body) == (200, {"success": True})
    assert Event.objects.filter(workspace=workspace, name="Chunked").count() == 20


def test_a_chunked_gzip_batch_is_stored(tenant):
    workspace, write_key, _ = tenant
    with served() as port:
        status, _ = _post_chunked(
            port,
            "/v1/batch",
            gzip.compress(orjson.dumps(_batch(5))),
            {"Authorization": basic_auth(write_key), "Content-Encoding": "gzip"},
        )

    assert status == 200
    assert Event.objects.filter(workspace=workspace, name="Chunked").count() == 5


def test_an_endless_chunked_body_is_refused_with_413_before_it_ends():
    """Unauthenticated, to a path that reads no body: answered 413 while the client still sends."""
    total = 64 * MEGABYTE
    chunk = b"%x\r\n%s\r\n" % (MEGABYTE, b"x" * MEGABYTE)
    sent = [0]
    with served() as port, socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n")

        def send_body() -> None:
            try:
                while sent[0] < total:
                    sock.sendall(chunk)
                    sent[0] += MEGABYTE
                sock.sendall(b"0\r\n\r\n")
            except OSError:
                pass  # the server closed the connection: what is expected

        sender = threading.Thread(target=send_body, daemon=True)
        sender.start()
        response = http.client.HTTPResponse(sock)
        response.begin()
        sent_when_answered = sent[0]
        detail = orjson.loads(response.read())["detail"]
        with contextlib.suppress(OSError):  # already closed by the server
            sock.shutdown(socket.SHUT_RDWR)
        sender.join(10)

    assert response.status == 413
    assert "larger than" in detail
    assert sent_when_answered < total


def test_an_oversized_content_length_is_refused_before_any_body_is_read():
    with served() as port, socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"POST /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 314572800\r\n\r\n")
        response = http.client.HTTPResponse(sock)
        response.begin()

    assert response.status == 413


def test_the_server_does_not_name_itself():
    with served() as port:
        response = httpx.get(f"http://127.0.0.1:{port}/healthz")

    assert response.status_code == 200
    assert "server" not in response.headers


@pytest.fixture
def admin_over_http(settings):
    """The sign-in page's cookies over plain HTTP, as this test server speaks it."""
    settings.CSRF_COOKIE_SECURE = settings.SESSION_COOKIE_SECURE = False
    return AdminUserFactory(username="root", is_superuser=True)


def _failed_admin_sign_in(port: int, forwarded_for: str) -> int:
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        page = client.get("/admin/login/")
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        response = client.post(
            "/admin/login/",
            data={"csrfmiddlewaretoken": token, "username": "root", "password": "wrong", "otp_token": "1"},
            headers={"X-Forwarded-For": forwarded_for},
        )
        return response.status_code


def test_x_forwarded_for_does_not_change_the_address_the_lockout_counts(settings, admin_over_http):
    settings.TRUST_X_FORWARDED_FOR = False
    with served() as port:
        for number in range(3):
            assert _failed_admin_sign_in(port, f"203.0.113.{number}") == 200

    assert list(AccessAttempt.objects.values_list("ip_address", "failures_since_start")) == [("127.0.0.1", 3)]


def test_behind_a_trusted_proxy_the_lockout_counts_the_forwarded_address(settings, admin_over_http):
    settings.TRUST_X_FORWARDED_FOR = True
    with served() as port:
        assert _failed_admin_sign_in(port, "198.51.100.7") == 200

    assert list(AccessAttempt.objects.values_list("ip_address", flat=True)) == ["198.51.100.7"]


@pytest.mark.parametrize(
    ("trust", "flag"), [("", "--no-proxy-headers"), ("0", "--no-proxy-headers"), ("True", "--proxy-headers")]
)
def test_make_run_serves_with_the_same_proxy_setting_and_no_server_header(trust, flag):
    """`make run` starts uvicorn itself: DJANGO_TRUST_X_FORWARDED_FOR decides there too."""
    environment = {**os.environ, "DJANGO_TRUST_X_FORWARDED_FOR": trust}
    command = [shutil.which("make"), "-n", "run"]
    planned = subprocess.run(  # noqa: S603 (our own Makefile, a dry run)
        command, cwd=ROOT, env=environment, capture_output=True, text=True, check=True
    ).stdout.splitlines()
    uvicorn_line = next(line for line in planned if "uvicorn config.asgi:application" in line)

    assert uvicorn_line.split()[-2:] == ["--no-server-header", flag]
