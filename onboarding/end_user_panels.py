"""Panels the apps above onboarding add to the end user's admin page (onboarding.admin.EndUserAdmin).

onboarding may not import guardrails or nudges, yet the page answers "why did or didn't this user
get X?" with their decisions and timeline: each app registers a panel in its AppConfig.ready(),
and the page shows the registered panels, in registration order, after its own fields.
"""

from collections.abc import Callable

from django.contrib import admin

from tenancy.models import EndUser

EndUserPanel = Callable[[EndUser], str]
"""A read-only field of the page: the end user in, safe HTML out (format_html, render_to_string);
its `__name__` names the field's row (CSS class field-<name>), its `short_description` labels it."""

_panels: dict[str, EndUserPanel] = {}


def end_user_panel_register(*, key: str, label: str, render: Callable[[EndUser], str]) -> None:
    """Add (or replace, under the same key) a panel on the end user's page."""

    def panel(end_user: EndUser) -> str:
        return render(end_user)

    panel.__name__ = panel.__qualname__ = key
    _panels[key] = admin.display(description=label)(panel)


def end_user_panels() -> tuple[EndUserPanel, ...]:
    """The registered panels, the same objects on every call (the admin matches its fields and
    read-only fields by identity)."""
    return tuple(_panels.values())
