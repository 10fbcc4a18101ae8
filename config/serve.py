"""The production web server: `python -m config.serve [--workers N]`.

uvicorn worker processes (uvloop, httptools), each accepting on a listening socket of its own
bound with SO_REUSEPORT, so that the kernel spreads new connections evenly over the workers.
uvicorn's own `--workers` share one listening socket, and the worker that wakes first accepts
every connection waiting: 100 keep-alive clients connecting together split 78/22 and 94/6
between two workers in bench/progress.py, and the busy worker's queue set the latency while the
other idled. A worker is one Python process (one core at most, under the GIL), so the split is
the ceiling.

The parent holds the address with a bound socket that does not listen (it takes no connections),
starts the workers, restarts one that dies, and on SIGTERM or SIGINT stops them all, each
finishing its requests within --timeout-graceful-shutdown.
"""

import argparse
import gc
import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time

import uvicorn
from django.conf import settings
from uvicorn.config import STARTUP_FAILURE

logger = logging.getLogger("uvicorn.error")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

APP = "config.asgi:application"
_spawn = multiprocessing.get_context("spawn")


def reuse_port_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def uvicorn_config(options: argparse.Namespace) -> uvicorn.Config:
    """The worker's server. X-Forwarded-For and X-Forwarded-Proto are read only when
    DJANGO_TRUST_X_FORWARDED_FOR says a proxy sets them (from the addresses in uvicorn's
    FORWARDED_ALLOW_IPS): uvicorn's default trusts them from 127.0.0.1, so that any local client
    chose the address the admin's sign-in lockout counts. No Server header names the software."""
    return uvicorn.Config(
        options.app,
        host=options.host,
        port=options.port,
        loop="uvloop",
        http="httptools",
        lifespan="off",
        access_log=options.access_log,
        log_level=options.log_level,
        timeout_graceful_shutdown=options.timeout_graceful_shutdown,
        proxy_headers=settings.TRUST_X_FORWARDED_FOR,
        server_header=False,
    )


def _worker(options: argparse.Namespace) -> None:
    """One worker process: its own listening socket, one uvicorn server on it."""
    config = uvicorn_config(options)
    config.load()  # imports Django and the application
    _freeze_startup_objects()
    sock = reuse_port_socket(options.host, options.port)
    _stop_when_orphaned(os.getppid())
    uvicorn.Server(config).run(sockets=[sock])


def _stop_when_orphaned(parent_pid: int) -> None:
    """A worker whose server process died (killed, out of memory) stops as if told to, instead of
    serving on, unsupervised, on the server's port."""

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(1)
        logger.warning("the server process %s is gone; worker %s stops", parent_pid, os.getpid())
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _freeze_startup_objects() -> None:
    """Keep the garbage collector off what startup made, which lives as long as the process.

    Django, DRF, scipy, LightGBM and the OpenAI client leave a great many objects behind, and
    every full collection walked them all, holding the GIL: in bench/progress.py's API phases the
    full collections of a worker took 190-310 ms each (ten or so a minute), and a request caught
    behind one waited for it. `gc.freeze()` moves them to a generation the collector never
    visits (the URLconf is imported first, so the views and what they import are among them):
    full collections then took 50-135 ms. What requests allocate is collected as before.
    """
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 (imports every view module)
    gc.collect()
    gc.freeze()


class Supervisor:
    """Keeps `workers` worker processes running until told to stop."""

    def __init__(self, options: argparse.Namespace):
        self.options = options
        self.processes: list = []
        self.stopping = threading.Event()

    def start_worker(self):
        process = _spawn.Process(target=_worker, args=(self.options,), name="web-worker")
        process.start()
        return process

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stopping.set())
        self.processes = [self.start_worker() for _ in range(self.options.workers)]
        logger.info(
            "serving %s on %s:%s with %d workers (SO_REUSEPORT)",
            self.options.app,
            self.options.host,
            self.options.port,
            self.options.workers,
        )
        exit_code = 0
        while not self.stopping.wait(0.5):
            for index, process in enumerate(self.processes):
                if process.is_alive():
                    continue
                if process.exitcode == STARTUP_FAILURE:
                    # The app or the socket is broken: every restart would fail the same way.
                    logger.error("worker %s failed to start; stopping", process.pid)
                    exit_code = 1
                    self.stopping.set()
                    break
                logger.warning("worker %s exited with %s; starting another", process.pid, process.exitcode)
                self.processes[index] = self.start_worker()
        self.stop()
        return exit_code

    def stop(self) -> None:
        for process in self.processes:
            if process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        for process in self.processes:
            process.join(self.options.timeout_graceful_shutdown + 5)
            if process.is_alive():
                process.kill()
                process.join()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m config.serve", description=__doc__.splitlines()[0])
    parser.add_argument("--app", default=APP, help="the ASGI application (module:attribute)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000, help="0 picks a free port")
    parser.add_argument(
        "--workers",
        type=int,
        default=int(os.environ.get("WEB_CONCURRENCY", "2")),
        help="worker processes (default: WEB_CONCURRENCY, else 2)",
    )
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--access-log", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--timeout-graceful-shutdown", type=int, default=30, help="seconds")
    options = parser.parse_args(argv)
    if options.workers < 1:
        parser.error("--workers must be at least 1")
    return options


def main(argv: list[str] | None = None) -> int:
    options = parse_args(argv)
    logging.basicConfig(level=options.log_level.upper(), format="%(levelname)s: %(message)s")
    try:
        # Held, not listened on: the address is ours (a taken port fails here, once), and with
        # --port 0 the workers all bind the free port it was given.
        reserved = reuse_port_socket(options.host, options.port)
    except OSError as error:
        logger.error("cannot bind %s:%s: %s", options.host, options.port, error)
        return 1
    options.port = reserved.getsockname()[1]
    try:
        return Supervisor(options).run()
    finally:
        reserved.close()


if __name__ == "__main__":
    sys.exit(main())
