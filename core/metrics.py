"""Prometheus metrics at /metrics, summed over every process that recorded them.

Web workers and RQ workers are separate processes, so metrics are kept in files under
PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode, switched on in settings before
any metric exists) and this view adds them up at scrape time, plus `error_rate_percent`, computed
from the same scrape's request counters (core/latency.py). With METRICS_TOKEN set, a scrape must
send `Authorization: Bearer <token>`; the metrics hold counts only, never user data.
"""

import hmac

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from core import latency


@require_GET
def metrics(request) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if token:
        sent = request.META.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(sent.encode(), token.encode()):
            return HttpResponse("A metrics token is required.\n", status=401, content_type="text/plain")
    registry = CollectorRegistry()
    registry.register(_SummedWithErrorRate())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class _SummedWithErrorRate:
    """Every process's metrics summed, and the error rate derived from them in the same read."""

    def collect(self):
        families = latency.read_families()
        yield from families
        yield latency.error_rate_family(families)
