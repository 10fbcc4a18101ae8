"""A request id on every request: taken from X-Request-ID when a proxy set a sane one, else new.

It is on `request.request_id`, in the response's X-Request-ID header, and readable anywhere below
the view (services, audit rows) through `current_request_id()`. Runs on the ingestion hot path,
so it does no I/O and never leaves async mode.
"""

import itertools
import os
import re
from contextvars import ContextVar

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

HEADER = "X-Request-ID"
# Something a proxy or a client could send that is safe to store (64 = AuditLog.request_id) and
# to echo: no spaces, quotes or control characters that would forge a log line or a header.
_ACCEPTED = re.compile(r"[A-Za-z0-9._:-]{1,64}")

_request_id: ContextVar[str] = ContextVar("request_id", default="")

# Ids are unique, not secret: a random prefix per process and a counter cost no system call per
# request (a uuid4 reads the kernel's random source every time).
_prefix = ""
_counter = itertools.count()


def _new_process() -> None:
    global _prefix, _counter
    _prefix, _counter = os.urandom(8).hex(), itertools.count()


_new_process()
os.register_at_fork(after_in_child=_new_process)


def current_request_id() -> str:
    """The id of the request being served, or "" outside a request (jobs, commands)."""
    return _request_id.get()


def _request_id_of(request) -> str:
    sent = request.META.get("HTTP_X_REQUEST_ID", "")
    if sent and _ACCEPTED.fullmatch(sent):
        return sent
    return f"{_prefix}{next(_counter):016x}"


class RequestIdMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response):
        self.get_response = get_response
        self._is_async = iscoroutinefunction(get_response)
        if self._is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self._is_async:
            return self._acall(request)
        request.request_id = _request_id_of(request)
        token = _request_id.set(request.request_id)
        try:
            response = self.get_response(request)
        finally:
            _request_id.reset(token)
        response[HEADER] = request.request_id
        return response

    async def _acall(self, request):
        request.request_id = _request_id_of(request)
        token = _request_id.set(request.request_id)
        try:
            response = await self.get_response(request)
        finally:
            _request_id.reset(token)
        response[HEADER] = request.request_id
        return response
