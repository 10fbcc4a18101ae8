"""Template variables: `{{ name }}` in a template's subject, body, call to action and link.

Rendering happens twice. Before personalisation, the feature variables are filled (persona,
step, path...); the contact variables ({{ first_name }}) are left in place, so neither the LLM
nor its prompt ever sees them. The gateway fills those last, for the one person it sends to.
An unknown variable is an error at approval time and never reaches a user.
"""

import re
from collections.abc import Mapping

VARIABLE = re.compile(r"{{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*}}")

# Variable -> what it holds. Filled from the user's features and progress (nudges.content.context).
FEATURE_VARIABLES = {
    "persona": "the user's persona trait",
    "use_case": "the user's use case trait",
    "company_size": "the user's company size trait",
    "path_name": "the name of the user's onboarding path",
    "step_title": "the title of the step the nudge aims at",
    "step_link": "the deep link of that step",
    "percent_complete": "how much of the path is done, 0-100",
    "steps_left": "how many required steps are left",
    "days_since_signup": "whole days since the user was enrolled",
    "workspace_name": "the product's name (the workspace)",
    "unsubscribe_url": "the one-click unsubscribe link (email)",
}
# Filled by the gateway only: contact data never enters the LLM context or the admin's preview.
CONTACT_VARIABLES = {
    "first_name": "the user's first name (or 'there' when unknown)",
    "name": "the user's full name (or 'there' when unknown)",
}
VARIABLES = {**FEATURE_VARIABLES, **CONTACT_VARIABLES}


def variables_in(text: str) -> set[str]:
    return {match.group(1) for match in VARIABLE.finditer(text or "")}


def unknown_variables(*texts: str) -> list[str]:
    """The variables used in these texts that this renderer does not know, sorted."""
    used = set().union(*(variables_in(text) for text in texts))
    return sorted(used - VARIABLES.keys())


def render(text: str, values: Mapping[str, object], *, keep: frozenset[str] = frozenset()) -> str:
    """Fill the variables found in `values`; the ones in `keep` stay as written (for a later
    stage); any other missing variable becomes empty."""

    def replace(match: re.Match) -> str:
        name = match.group(1)
        if name in values and values[name] is not None:
            return str(values[name])
        return match.group(0) if name in keep else ""

    return VARIABLE.sub(replace, text or "")


KEEP_CONTACT = frozenset(CONTACT_VARIABLES)


def contact_values(*, first_name: str, last_name: str, name: str) -> dict[str, str]:
    """The contact variables for one recipient (the gateway's last render)."""
    full = name or " ".join(part for part in (first_name, last_name) if part)
    return {"first_name": first_name or (full.split()[0] if full else "there"), "name": full or "there"}
