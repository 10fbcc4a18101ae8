"""The ASGI application served by a real uvicorn server, configured as config.serve configures its
workers, in a thread of the test process (so it shares the tests' database)."""

import argparse
import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn

from config import serve


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def served() -> Iterator[int]:
    """Serves config.asgi:application on 127.0.0.1 until the block ends; yields the port."""
    options = serve.parse_args(["--port", str(_free_port()), "--no-access-log", "--log-level", "warning"])
    config = serve.uvicorn_config(argparse.Namespace(**{**vars(options), "timeout_graceful_shutdown": 1}))
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-under-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("the server did not start")
        time.sleep(0.05)
    try:
        yield options.port
    finally:
        server.should_exit = True
        thread.join(10)
