"""Times every API request (paths under /api/ and /v1/, the prefixes NoStoreApiMiddleware calls
the API) into `api_latency_p95_ms` and counts it, and its 5xx, in `api_requests_total` and
`api_errors_total` (core/latency.py). The admin, static files, /metrics, /healthz and the
tracking links are left out: they are not the API a client waits on.

Labels stay bounded whatever clients send: `route` is the resolved URL name (the URLconf's
finite set) or "unmatched", `method` one of the HTTP methods the API knows or "other". Runs
outermost, so the time covers every other middleware, and on the ingestion hot path: no I/O but
prometheus_client's writes to its memory-mapped file, and never leaves async mode.
"""

from time import perf_counter

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from core.latency import API_ERRORS, API_LATENCY, API_REQUESTS
from core.middleware.cache_control import API_PREFIXES

UNMATCHED = "unmatched"
OTHER_METHOD = "other"
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


def _record(request, status_code: int, started: float) -> None:
    match = request.resolver_match
    route = match.view_name if match is not None else UNMATCHED
    method = request.method if request.method in METHODS else OTHER_METHOD
    API_LATENCY.labels(route, method).observe((perf_counter() - started) * 1000)
    API_REQUESTS.labels(route, method).inc()
    if status_code >= 500:
        API_ERRORS.labels(route, method).inc()


class RequestMetricsMiddleware:
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
        if not request.path_info.startswith(API_PREFIXES):
            return self.get_response(request)
        started = perf_counter()
        response = self.get_response(request)
        _record(request, response.status_code, started)
        return response

    async def _acall(self, request):
        if not request.path_info.startswith(API_PREFIXES):
            return await self.get_response(request)
        started = perf_counter()
        response = await self.get_response(request)
        _record(request, response.status_code, started)
        return response
