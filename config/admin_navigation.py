"""The admin's navigation, by the team's workflow rather than by app label: Overview, Paths,
People & progress, Nudges, Experiments, Machine learning, Analytics, Guardrails, Settings.

Each registered model is placed by (app label, model name), else by its app label, else under
Settings; the dashboards of analytics.dashboards.registry go under their own section.
"""

from django.http import HttpRequest
from django.urls import reverse

from analytics.dashboards.registry import dashboards
from analytics.dashboards.views import dashboard_url
from tenancy import selectors as tenancy_selectors

OVERVIEW, PATHS, PEOPLE, NUDGES = "Overview", "Paths", "People & progress", "Nudges"
EXPERIMENTS, ANALYTICS, GUARDRAILS, SETTINGS = "Experiments", "Analytics", "Guardrails", "Settings"
MACHINE_LEARNING = "Machine learning"
SECTIONS = (OVERVIEW, PATHS, PEOPLE, NUDGES, EXPERIMENTS, MACHINE_LEARNING, ANALYTICS, GUARDRAILS, SETTINGS)

BY_MODEL = {
    ("onboarding", "workspace"): SETTINGS,
    ("onboarding", "apikey"): SETTINGS,
    ("nudges", "channelprovider"): SETTINGS,
    ("nudges", "nudgesettings"): SETTINGS,
    ("guardrails", "workspacesecret"): SETTINGS,
    ("analytics", "analyticssettings"): SETTINGS,
    ("django_rq", "dashboard"): SETTINGS,
}
BY_APP = {
    "paths": PATHS,
    "onboarding": PEOPLE,
    "nudges": NUDGES,
    "experiments": EXPERIMENTS,
    "ml": MACHINE_LEARNING,
    "analytics": ANALYTICS,
    "guardrails": GUARDRAILS,
    "axes": GUARDRAILS,
}


def section_of(app_label: str, model_name: str) -> str:
    return BY_MODEL.get((app_label, model_name)) or BY_APP.get(app_label, SETTINGS)


def _page(name: str, url: str, key: str) -> dict:
    """A page that is not a model, shown as a view-only entry of its section."""
    return {
        "name": name,
        "object_name": key,
        "admin_url": url,
        "add_url": None,
        "view_only": True,
        "perms": {"view": True},
    }


def _section(name: str, entries: list[dict], url: str) -> dict:
    label = name.lower().replace(" & ", "-").replace(" ", "-")
    return {"name": name, "app_label": label, "app_url": url, "has_module_perms": True, "models": entries}


def grouped_app_list(request: HttpRequest, app_list: list[dict]) -> list[dict]:
    """Django's app list (apps of models) regrouped into the workflow's sections, in order."""
    entries: dict[str, list[dict]] = {name: [] for name in SECTIONS}
    if tenancy_selectors.workspaces_for_admin(user=request.user).exists():
        entries[OVERVIEW].append(_page("Overview", reverse("admin:index"), "Overview"))
        for entry in dashboards():
            url = dashboard_url(entry.key)
            if url:
                entries[entry.section].append(_page(entry.title, url, f"Dashboard:{entry.key}"))
        entries[ANALYTICS].append(_page("Signals reports", reverse("signals-reports"), "SignalReports"))
    for app in app_list:
        for model in app["models"]:
            model_name = model["object_name"].lower()
            entries[section_of(app["app_label"], model_name)].append(model)
    return [
        _section(name, found, found[0]["admin_url"] or reverse("admin:index"))
        for name, found in entries.items()
        if found
    ]
