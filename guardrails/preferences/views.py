"""Public pages of the guardrails app (no login): the one-click unsubscribe link, /u/<token>.

GET shows a confirmation page and changes nothing (mail scanners open links); POST withdraws
consent. A mail client's RFC 8058 one-click POST carries `List-Unsubscribe=One-Click` as a form
body and no cookie or CSRF token, hence csrf_exempt: the signed token is the authorisation.
"""

import logging

from django.http import HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from guardrails.models import Channel, Purpose
from guardrails.preferences import selectors, services
from guardrails.preferences.unsubscribe import ONE_CLICK_BODY, LinkInvalid, unsubscribe_link_verify

logger = logging.getLogger(__name__)
TEMPLATE = "guardrails/unsubscribe.html"


def _page(request, status: int, **context) -> HttpResponse:
    response = render(request, TEMPLATE, context, status=status)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"  # the token must not leak to linked sites
    return response


@csrf_exempt
@require_http_methods(["GET", "POST"])
def unsubscribe(request, token: str) -> HttpResponse:
    try:
        link = unsubscribe_link_verify(token)
    except LinkInvalid:
        logger.info("guardrails.preferences.unsubscribe.invalid_link")
        return _page(request, 400, state="invalid")
    end_user = selectors.end_user_get_by_pk(workspace_id=link.workspace_id, end_user_id=link.end_user_id)
    if end_user is None:
        logger.info(
            "guardrails.preferences.unsubscribe.unknown_user", extra={"workspace_id": link.workspace_id}
        )
        return _page(request, 404, state="unknown")
    labels = {
        "channel": Channel(link.channel).label,
        "purpose": Purpose(link.purpose).label.lower(),
        "workspace": end_user.workspace.name,
    }
    if request.method == "GET":
        return _page(request, 200, state="confirm", **labels)
    if request.POST.get("List-Unsubscribe") != ONE_CLICK_BODY.partition("=")[2]:
        return _page(request, 400, state="bad_request", **labels)
    changed = services.unsubscribe_apply(
        end_user=end_user,
        channel=link.channel,
        purpose=link.purpose,
        request_id=request.META.get("HTTP_X_REQUEST_ID", "")[:64],
    )
    logger.info(
        "guardrails.preferences.unsubscribe.done",
        extra={
            "workspace_id": end_user.workspace_id,
            "end_user_id": end_user.pk,
            "channel": link.channel,
            "purpose": link.purpose,
            "changed": changed,
        },
    )
    return _page(request, 200, state="done", **labels)
