"""Public tracking endpoints (no login): the signed click redirect and the email open pixel."""

import base64
import logging

from django.http import Http404, HttpResponse, HttpResponseRedirect
from django.views.decorators.http import require_GET

from nudges import selectors, services
from nudges.content import links
from nudges.delivery import tracking
from nudges.models import Nudge

logger = logging.getLogger(__name__)

# A transparent 1x1 GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")


def _nudge(token: str, salt: str) -> Nudge:
    try:
        nudge_id = tracking.nudge_id_from(token, salt=salt)
    except tracking.TokenInvalid:
        logger.info("nudges.delivery.tracking.invalid_token")
        raise Http404("This link is not valid.") from None
    nudge = selectors.nudge_get_by_pk(nudge_id=nudge_id)
    if nudge is None:
        raise Http404("This link is no longer valid.")
    return nudge


@require_GET
def click(request, token: str) -> HttpResponse:
    """Record the click, then go to the nudge's own call to action (never a URL from the request),
    a relative deep link on the workspace's product (nudges.content.links), never on this server."""
    nudge = _nudge(token, tracking.CLICK_SALT)
    destination = links.call_to_action_destination(workspace=nudge.workspace, link=nudge.cta_url)
    if not destination:
        logger.info("nudges.delivery.tracking.no_destination", extra={"nudge_id": nudge.pk})
        raise Http404("This call to action leads nowhere: the product's address is not configured.")
    services.nudge_status_advance(nudge=nudge, status=Nudge.Status.CLICKED, source="click")
    response = HttpResponseRedirect(destination)
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


@require_GET
def open_pixel(request, token: str) -> HttpResponse:
    nudge = _nudge(token, tracking.OPEN_SALT)
    services.nudge_status_advance(nudge=nudge, status=Nudge.Status.OPENED, source="pixel")
    response = HttpResponse(PIXEL, content_type="image/gif")
    response["Cache-Control"] = "no-store, private"
    return response
