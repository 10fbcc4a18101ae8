"""Where a nudge's call to action leads: the product, not this server.

A step's deep link is usually relative to the product ("/app/projects/new"). Relative links are
appended to the workspace's `product_base_url` ("https://app.example.com" + the link). Without a
product base URL a relative link has nowhere to go, and the call to action is dropped (no button,
no empty or null link), rather than the step or template refused: paths, templates and the
workspace's URL are edited apart, and whichever is set last makes the links work. Absolute http(s)
links are kept as they are; anything else (protocol-relative "//host", javascript:, data:...)
leads nowhere.

The click redirect (nudges.delivery.views.click) and every channel's message
(nudges.content.composer) resolve the stored link through `call_to_action_destination`, so a
base URL set later fixes links already sent.
"""

from urllib.parse import urlsplit

from tenancy.models import Workspace

WEB_SCHEMES = ("http", "https")


def call_to_action_destination(*, workspace: Workspace, link: str) -> str:
    """The absolute URL `link` leads to for this workspace; "" when it leads nowhere."""
    link = (link or "").strip()
    if not link:
        return ""
    if link.startswith("/") and not link.startswith("//"):
        base = workspace.product_base_url.rstrip("/")
        return base + link if base else ""
    parts = urlsplit(link)
    if parts.scheme.lower() in WEB_SCHEMES and parts.netloc:
        return link
    return ""
