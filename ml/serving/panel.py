"""The end user's admin page panel (onboarding.end_user_panels): the latest path choice the ML
layer logged for them: which policy decided (and which model version), the chosen path against
the rules' with their predicted activation, the features that moved it most, where the features
came from, and whether the shadow versions agreed. Everything escaped (format_html).
"""

from django.utils.html import format_html, format_html_join

from ml.models import PathChoice
from ml.serving import explain
from tenancy.models import EndUser

KEY = "ml_path_choice"
LABEL = "path model"


def latest_choice(*, workspace_id: int, end_user_id: int) -> PathChoice | None:
    return (
        PathChoice.objects.filter(workspace_id=workspace_id, end_user_id=end_user_id)
        .select_related("model_version")
        .order_by("-decided_at", "-pk")
        .first()
    )


def _paths(choice: PathChoice) -> str:
    chosen = format_html(
        "chose <b>{}</b> ({})", choice.path_key, explain.percent(choice.scores.get(choice.path_key))
    )
    if not choice.scores:
        chosen = format_html("chose <b>{}</b>", choice.path_key)
    if choice.rules_path_key == choice.path_key:
        return format_html("{}, the rules' choice too", chosen)
    rules_probability = choice.scores.get(choice.rules_path_key) if choice.scores else None
    rules = (
        choice.rules_path_key
        if rules_probability is None
        else (f"{choice.rules_path_key} ({explain.percent(rules_probability)})")
    )
    return format_html("{}; the rules chose {}", chosen, rules)


def _shadow(choice: PathChoice) -> str:
    if not choice.shadow:
        return ""
    return format_html_join(
        ", ",
        "shadow {}: {}",
        (
            (
                each.get("version", "?"),
                each["error"]
                if "error" in each
                else f"{each.get('path_key')} ({'agrees' if each.get('agrees') else 'disagrees'})",
            )
            for each in choice.shadow
        ),
    )


def render(end_user: EndUser) -> str:
    choice = latest_choice(workspace_id=end_user.workspace_id, end_user_id=end_user.pk)
    if choice is None:
        return "-"
    model = f" ({choice.model_version})" if choice.model_version_id else ""
    lines = [
        format_html("policy <b>{}</b>{}, propensity {}", choice.policy, model, f"{choice.propensity:.3f}"),
        _paths(choice),
    ]
    if choice.explanation:
        lines.append(format_html("top features: {}", explain.contributions_text(choice.explanation)))
    if choice.feature_source:
        lines.append(format_html("features from {}", choice.feature_source))
    shadow = _shadow(choice)
    if shadow:
        lines.append(shadow)
    lines.append(format_html("<i>{}</i>", choice.reason))
    return format_html_join("", "<div>{}</div>", ((line,) for line in lines))
