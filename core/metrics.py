"""Prometheus metrics at /metrics, summed over every process that recorded them.

Web workers and RQ workers are separate processes, so metrics are kept in files under
PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode, switched on in settings before
any metric exists) and this view adds them up at scrape time, plus `error_rate_percent`, computed
from the same scrape's request counters (core/latency.py). With METRICS_TOKEN set, a scrape must
send `Authorization: Bearer <token>`; the metrics hold counts only, never user data.

Apps add their own gauges (e.g. analytics' rollup metrics) with `register_collector` from their
AppConfig.ready(): core knows no domain, so it never imports them.
"""

import hmac

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from core import latency

_EXTRA_COLLECTORS: list = []


def register_collector(collector) -> None:
    """Add a prometheus_client collector (an object with collect()) to every scrape; idempotent."""
    if collector not in _EXTRA_COLLECTORS:
        _EXTRA_COLLECTORS.append(collector)


@require_GET
def metrics(request) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if token:
        sent = request.META.get("HTTP_AUTHORIZATION", "").removeprefix("Bearer ").strip()
        if not hmac.compare_digest(sent.encode(), token.encode()):
            return HttpResponse("A metrics token is required.\n", status=401, content_type="text/plain")
    registry = CollectorRegistry()
    registry.register(_SummedWithErrorRate())
    for collector in _EXTRA_COLLECTORS:
        registry.register(collector)
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class _SummedWithErrorRate:
    """Every process's metrics summed, and the error rate derived from them in the same read."""

    def collect(self):
        families = latency.read_families()
        yield from families
        yield latency.error_rate_family(families)
