"""No log line names an end user by their user id (core/logging.py): requests to user-scoped
paths, and an erasure, log the user id's keyed digest instead, from Django's request logger and
from the real server's access and websocket lines."""

import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import quote

import pytest
import websockets.sync.client
from django.test import override_settings
from websockets.exceptions import ConnectionClosed, InvalidStatus

from core.logging import JsonFormatter, UserIdFilter, redacted, user_id_digest
from tenancy.models import EndUser
from tests.conftest import basic_auth
from tests.factories import CANARY_EMAIL
from tests.onboarding.progress_setup import enrol, published_path

ROOT = Path(__file__).resolve().parents[2]
SERVER_SECRET_KEY = "logging-test-" + "k" * 50
# The canary as uvicorn prints it: its access lines quote the path.
CANARY_FORMS = (CANARY_EMAIL, quote(CANARY_EMAIL), quote(CANARY_EMAIL, safe=""))


def _assert_no_canary(lines: list[str]) -> None:
    for line in lines:
        assert not any(form.lower() in line.lower() for form in CANARY_FORMS), line


@pytest.fixture
def request_log(caplog):
    """The lines Django's request logger writes, formatted as production formats them."""
    caplog.set_level(logging.INFO)
    formatter = JsonFormatter()

    def lines() -> list[str]:
        return [formatter.format(record) for record in caplog.records]

    return lines


def test_a_404_on_a_user_scoped_path_logs_the_digest_of_the_user_id(api_client, tenant, request_log):
    _, _, secret_key = tenant

    response = api_client.get(
        f"/api/v1/users/{CANARY_EMAIL}/onboarding", HTTP_AUTHORIZATION=basic_auth(secret_key)
    )

    assert response.status_code == 404
    lines = request_log()
    warning = next(line for line in lines if '"logger":"django.request"' in line)
    assert (
        json.loads(warning)["event"] == f"Not Found: /api/v1/users/{user_id_digest(CANARY_EMAIL)}/onboarding"
    )
    _assert_no_canary(lines)


def test_an_erased_person_is_not_named_by_the_erasure_lines(api_client, tenant, request_log):
    workspace, write_key, secret_key = tenant
    published_path(workspace)
    enrol(write_key, CANARY_EMAIL, workspace)
    credentials = {"HTTP_AUTHORIZATION": basic_auth(secret_key)}

    erased = api_client.delete(f"/api/v1/users/{CANARY_EMAIL}", **credentials)
    again = api_client.delete(f"/api/v1/users/{CANARY_EMAIL}", **credentials)
    gone = api_client.get(f"/api/v1/users/{CANARY_EMAIL}/onboarding", **credentials)

    assert (erased.status_code, again.status_code, gone.status_code) == (200, 200, 404)
    assert not EndUser.objects.filter(external_id=CANARY_EMAIL).exists()
    lines = request_log()
    assert any(user_id_digest(CANARY_EMAIL) in line for line in lines)
    _assert_no_canary(lines)


def test_the_digest_is_keyed_by_the_secret_key_and_the_same_quoted_or_not():
    digest = user_id_digest(CANARY_EMAIL)
    with override_settings(SECRET_KEY="another-secret-key-" + "x" * 40):
        other_key = user_id_digest(CANARY_EMAIL)

    assert digest == user_id_digest(quote(CANARY_EMAIL)) != other_key
    assert digest.startswith("[user:") and len(digest) == len("[user:]") + 16
    assert redacted(redacted(f"/api/v1/users/{CANARY_EMAIL}")) == f"/api/v1/users/{digest}"


def test_the_filter_rewrites_a_record_for_every_handler_and_format():
    record = logging.makeLogRecord(
        {
            "name": "uvicorn.access",
            "msg": '%s - "%s %s HTTP/%s" %d',
            "args": (
                "127.0.0.1:5000",
                "DELETE",
                f"/api/v1/users/{quote(CANARY_EMAIL)}?token=ut_abc",
                "1.1",
                404,
            ),
        }
    )

    assert UserIdFilter().filter(record) is True
    digest = user_id_digest(CANARY_EMAIL)
    assert (
        record.getMessage()
        == f'127.0.0.1:5000 - "DELETE /api/v1/users/{digest}?token=[redacted] HTTP/1.1" 404'
    )


# --- The real server ------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_serving(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, "the server exited"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise AssertionError("the server did not start")


@pytest.fixture
def server_log(tmp_path):
    """`python -m config.serve` with its access log on; yields (port, read), where read() stops
    the server and returns the lines it wrote."""
    port = _free_port()
    env = {
        **os.environ,
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": SERVER_SECRET_KEY,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
    }
    output = (tmp_path / "server.log").open("w+")
    command = [sys.executable, "-m", "config.serve", "--port", str(port), "--workers", "1"]
    command += ["--log-level", "info", "--timeout-graceful-shutdown", "1"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)  # noqa: S603 (ours)

    def read() -> list[str]:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        output.seek(0)
        return output.read().splitlines()

    try:
        _wait_serving(port, process)
        yield port, read
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        output.close()


def test_the_servers_access_and_websocket_lines_carry_the_digest_not_the_user_id(server_log):
    port, read = server_log
    base = f"http://127.0.0.1:{port}"

    with pytest.raises(urllib.error.HTTPError) as unauthenticated:
        urllib.request.urlopen(f"{base}/api/v1/users/{quote(CANARY_EMAIL)}/onboarding", timeout=10)  # noqa: S310 (ours)
    # Refused at the handshake or closed after it, the websocket line is written either way.
    with (
        contextlib.suppress(InvalidStatus, ConnectionClosed),
        websockets.sync.client.connect(
            f"ws://127.0.0.1:{port}/ws/v1/onboarding/?token=ut_{quote(CANARY_EMAIL)}", open_timeout=10
        ) as websocket,
    ):
        websocket.recv(timeout=10)
    lines = read()

    assert unauthenticated.value.code == 401
    with override_settings(SECRET_KEY=SERVER_SECRET_KEY):
        digest = user_id_digest(CANARY_EMAIL)
    access = [line for line in lines if f"/api/v1/users/{digest}/onboarding HTTP/1.1" in line]
    assert len(access) == 1, lines
    assert any("/ws/v1/onboarding/?token=[redacted]" in line for line in lines), lines
    _assert_no_canary(lines)
