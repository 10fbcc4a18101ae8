"""The HTTP half of the ASGI application: Django's request cycle run once per request, in one
long-lived thread of a bounded pool.

Every view here is synchronous (DRF, the admin). Django's own ASGIHandler serves them by hopping
threads at each sync/async boundary: every MiddlewareMixin middleware runs its process_request
and process_response through its own `sync_to_async`, each request gets a new thread, and the
response is closed in yet another hop. With this project's middleware that cost more CPU than
most views (a `SELECT 1` health check took ~10 ms here). This handler does what a WSGI server
does instead: the body is read on the event loop, then request_started, the whole synchronous
middleware chain, the view, rendering and request_finished run in one pool thread, where the
thread's database connection comes from and goes back to the pool.

Each thread also keeps one `contextvars` context for all the requests it serves, as a WSGI
thread does. Django keeps its cache connections per context: in a fresh context per request,
every request built a new Redis connection pool and connected again.

Websocket frames sent from a view with `async_to_sync` still run on the server's event loop (and
its Redis connections): `sync_to_async` tells the thread which loop it came from. Work the request
need not wait for (the progress pushes after a write) goes to that loop with `run_soon` instead.
"""

import asyncio
import contextvars
import io
import logging
import threading
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor

from asgiref.sync import async_to_sync, sync_to_async
from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpResponse
from django.urls import set_script_prefix

logger = logging.getLogger(__name__)

# The server's event loop, in the threads serving its requests (unset anywhere else).
_serving_loop: contextvars.ContextVar[asyncio.AbstractEventLoop | None] = contextvars.ContextVar(
    "serving_loop", default=None
)
_running: set[Future] = set()  # what run_soon started: referenced until done


def run_soon(coroutine_function: Callable[..., Coroutine], *args) -> bool:
    """In a request's thread, start `coroutine_function(*args)` on the server's event loop and
    return at once: the request does not wait for it (nor for the loop to get to it). Elsewhere
    (a test client, a job, a command) return False, and the caller runs it itself."""
    loop = _serving_loop.get()
    if loop is None or loop.is_closed():
        return False
    future = asyncio.run_coroutine_threadsafe(coroutine_function(*args), loop)
    _running.add(future)
    future.add_done_callback(_finished)
    return True


def _finished(future: Future) -> None:
    _running.discard(future)
    if not future.cancelled() and future.exception() is not None:
        logger.error("http.run_soon_failed", exc_info=future.exception())


class ThreadPoolASGIHandler(ASGIHandler):
    """Serves ASGI HTTP with Django's synchronous request cycle in `threads` worker threads."""

    def __init__(self, threads: int):
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)
        self._executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="http")
        self._thread = threading.local()

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django serves HTTP only, not {scope['type']}.")
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        scope = _with_content_length(scope, body_file)
        try:
            run = sync_to_async(
                self._respond_in_thread_context, thread_sensitive=False, executor=self._executor
            )
            response = await run(scope, body_file, send, asyncio.get_running_loop())
        finally:
            body_file.close()
        if response is not None:  # not streamed from the thread: send it from here
            await self.send_response(response, send)

    def _respond_in_thread_context(self, scope, body_file, send, loop) -> HttpResponse | None:
        context = getattr(self._thread, "context", None)
        if context is None:
            context = self._thread.context = contextvars.Context()
        return context.run(self._respond, scope, body_file, send, loop)

    def _respond(self, scope, body_file, send, loop) -> HttpResponse | None:
        """The request cycle, in a pool thread. Streaming responses are sent from here, so that
        their iterator (often a database cursor) runs in the thread that owns the connection."""
        _serving_loop.set(loop)
        set_script_prefix(self._script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, error_response = self.create_request(scope, body_file)
        response = error_response if request is None else self.get_response(request)
        try:
            if not response.streaming:
                return response
            if response.is_async:
                return response  # an async iterator is consumed on the event loop
            self._send_streaming(response, send)
            return None
        finally:
            response.close()  # request_finished: the thread's connection goes back to the pool

    def _send_streaming(self, response, send) -> None:
        send_now = async_to_sync(send)
        send_now(
            {"type": "http.response.start", "status": response.status_code, "headers": _headers(response)}
        )
        try:
            for part in response.streaming_content:
                for chunk, _ in self.chunk_bytes(part):
                    send_now({"type": "http.response.body", "body": chunk, "more_body": True})
        except OSError:
            return  # the client went away
        send_now({"type": "http.response.body"})

    @staticmethod
    def _script_prefix(scope) -> str:
        if settings.FORCE_SCRIPT_NAME:
            return settings.FORCE_SCRIPT_NAME
        return scope.get("root_path", "") or "/"


def _with_content_length(scope, body_file) -> dict:
    """The scope, with the length of a body sent without Content-Length (chunked), now that it
    has been read whole. Django and DRF read a body only as far as Content-Length says: DRF
    reads none without it, so that a chunked batch was refused as empty."""
    if any(name == b"content-length" for name, _ in scope.get("headers", ())):
        return scope
    size = body_file.seek(0, io.SEEK_END)
    body_file.seek(0)
    if not size:
        return scope
    return {**scope, "headers": [*scope.get("headers", ()), (b"content-length", str(size).encode())]}


def _headers(response) -> list[tuple[bytes, bytes]]:
    """Response headers and cookies as ASGI wants them (what ASGIHandler.send_response builds)."""
    headers = [
        (name.encode("ascii") if isinstance(name, str) else name, value.encode("latin1"))
        for name, value in response.items()
    ]
    headers += [
        (b"Set-Cookie", cookie.output(header="").encode("ascii").strip())
        for cookie in response.cookies.values()
    ]
    return headers
