"""django-csp's middleware with the common header built once.

django-csp builds the Content-Security-Policy anew for every response (~60 µs here, more than the
rest of the middleware chain of a small ingestion call). Most responses (every API answer) used no
nonce and carry no per-view policy: they all get the same header, built once per settings. The
others (admin pages with a nonce, a view decorated with its own policy, DEBUG's error pages) go
through django-csp as before.
"""

from functools import cache

from csp.constants import HEADER
from csp.middleware import CheckableLazyObject
from csp.middleware import CSPMiddleware as LibraryCSPMiddleware
from csp.utils import build_policy
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

# Where django-csp's view decorators leave a response's own policy.
_VIEW_POLICY_ATTRIBUTES = (
    "_csp_config",
    "_csp_update",
    "_csp_replace",
    "_csp_exempt",
    "_csp_config_ro",
    "_csp_update_ro",
    "_csp_replace_ro",
    "_csp_exempt_ro",
)


@cache
def _policy_without_nonce() -> str:
    return build_policy()


@receiver(setting_changed)
def _forget_policy(*, setting: str, **_) -> None:
    if setting.startswith("CONTENT_SECURITY_POLICY"):
        _policy_without_nonce.cache_clear()


class CSPMiddleware(LibraryCSPMiddleware):
    def process_response(self, request, response):
        if (
            getattr(request, "_csp_nonce", None) is not None
            or HEADER in response
            or getattr(settings, "CONTENT_SECURITY_POLICY_REPORT_ONLY", None)
            or settings.DEBUG
            or any(hasattr(response, name) for name in _VIEW_POLICY_ATTRIBUTES)
        ):
            return super().process_response(request, response)
        policy = _policy_without_nonce()
        if policy:
            response[HEADER] = policy
        # As django-csp does: a nonce asked for after the header was written is an error.
        request.csp_nonce = CheckableLazyObject(self._csp_nonce_post_response)
        return response
