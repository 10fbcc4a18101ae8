"""The production web server (config/serve.py): workers share the load, stop cleanly, come back."""

import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = [
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc"),
    # The servers use the tests' database, which pytest-django creates only for tests that ask.
    pytest.mark.django_db,
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _children(pid: int) -> set[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return {int(child) for child in children}


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):  # closed while we looked
                target = os.readlink(fd)
                if target.startswith("socket:["):
                    inodes.add(target[len("socket:[") : -1])
    except OSError:  # the process is gone
        pass
    return inodes


def _server_side_inode(server_port: int, client_port: int) -> str | None:
    """The inode of the accepted socket whose peer is our client's port (/proc/net/tcp)."""
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local_port = int(fields[1].split(":")[1], 16)
        remote_port = int(fields[2].split(":")[1], 16)
        if (local_port, remote_port) == (server_port, client_port):
            return fields[9]
    return None


def _database_url_of_tests() -> dict:
    """On PostgreSQL the server uses the tests' database: the one DATABASE_URL names may not exist
    on a developer's machine, and /healthz answers 503 without it."""
    from django.conf import settings

    database = settings.DATABASES["default"]
    if database["ENGINE"] != "django.db.backends.postgresql" or "DATABASE_URL" not in os.environ:
        return {}
    url = urlsplit(os.environ["DATABASE_URL"])  # host, credentials and options kept as given
    return {"DATABASE_URL": url._replace(path=f"/{database['NAME']}").geturl()}


@pytest.fixture
def server():
    """Starts `python -m config.serve` with two workers; yields (process, port)."""
    port = _free_port()
    env = {
        **os.environ,
        **_database_url_of_tests(),
        "DJANGO_DEBUG": "0",
        "DJANGO_SECRET_KEY": "serve-test-" + "k" * 50,
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
    }
    command = [sys.executable, "-m", "config.serve", "--port", str(port), "--workers", "2"]
    command += ["--no-access-log", "--log-level", "warning", "--timeout-graceful-shutdown", "2"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)  # noqa: S603 (ours)
    try:
        _wait_serving(port, process)
        yield process, port
    finally:
        workers = _children_or_empty(process.pid)  # read before the server goes, and they with it
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        for pid in workers:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _running(pid: int) -> bool:
    """Neither gone nor a zombie waiting to be reaped."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return False
    return state != "Z"


def _children_or_empty(pid: int) -> set[int]:
    try:
        return _children(pid)
    except FileNotFoundError:
        return set()


def _wait_serving(port: int, process: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the server exited: {process.stderr.read()}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            connection.request("GET", "/healthz")
            if connection.getresponse().status == 200:
                connection.close()
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("the server did not answer in time")


def _workers(
    process: subprocess.Popen, port: int, count: int = 2, timeout: float = 60, gone: int | None = None
) -> set[int]:
    """The worker pids once `count` of them listen, `gone` not among them (a replacement takes a
    few seconds to start)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listening = _listening_inodes(port)
        workers = {pid for pid in _children_or_empty(process.pid) if _socket_inodes(pid) & listening}
        if len(workers) == count and gone not in workers:
            return workers
        time.sleep(0.2)
    raise AssertionError(f"{count} workers did not come up")


def _listening_inodes(port: int) -> set[str]:
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == "0A":  # TCP_LISTEN
            inodes.add(fields[9])
    return inodes


def test_connections_made_together_are_spread_over_both_workers(server):
    process, port = server
    workers = _workers(process, port)
    connections = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(40)]
    for connection in connections:  # all 40 waiting to be accepted at once, as a burst of clients
        connection.connect()
    for connection in connections:
        connection.request("GET", "/healthz")
    for connection in connections:
        response = connection.getresponse()
        response.read()
        assert response.status == 200

    inodes = {pid: _socket_inodes(pid) for pid in workers}
    served_by = []
    for connection in connections:
        inode = _server_side_inode(port, connection.sock.getsockname()[1])
        served_by.append(next(pid for pid, owned in inodes.items() if inode in owned))
        connection.close()

    # Each worker accepts on its own SO_REUSEPORT socket and the kernel spreads connections over
    # them. With one shared socket (uvicorn's --workers) the first worker to wake takes nearly
    # all: 3/37 in two runs out of three here.
    counts = sorted(served_by.count(pid) for pid in workers)
    assert counts[0] >= 8, counts


def test_a_worker_that_dies_is_replaced(server):
    process, port = server
    victim = min(_workers(process, port))
    os.kill(victim, signal.SIGKILL)

    workers = _workers(process, port, gone=victim)

    assert victim not in workers and len(workers) == 2
    _wait_serving(port, process)


def test_sigterm_stops_the_workers_and_the_server(server):
    process, port = server
    workers = _workers(process, port)

    process.send_signal(signal.SIGTERM)

    assert process.wait(timeout=30) == 0
    assert not any(_running(pid) for pid in workers)


def test_workers_stop_when_the_server_process_is_killed(server):
    process, port = server
    workers = _workers(process, port)

    process.kill()  # SIGKILL: the server cannot tell its workers
    process.wait(timeout=10)

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(_running(pid) for pid in workers):
        time.sleep(0.2)
    assert not any(_running(pid) for pid in workers)
    with pytest.raises(OSError):
        http.client.HTTPConnection("127.0.0.1", port, timeout=2).request("GET", "/healthz")


def test_a_taken_port_is_refused_with_a_reason():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(  # noqa: S603 (our own command line)
            [sys.executable, "-m", "config.serve", "--port", str(port), "--workers", "1"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
        )

    assert done.returncode == 1
    assert f"cannot bind 127.0.0.1:{port}" in done.stderr
