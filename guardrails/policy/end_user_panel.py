"""The end user's guardrail decisions, a panel of their admin page (onboarding.end_user_panels):
why they did or didn't get a nudge, an LLM call, an export, each rule that spoke."""

from django.utils.html import format_html, format_html_join

from guardrails.policy import selectors
from tenancy.models import EndUser


def guardrail_decisions_html(end_user: EndUser) -> str:
    decisions = selectors.policy_decisions_recent(end_user=end_user)
    rows = format_html_join(
        "",
        "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
        (
            (
                decision.decided_at.strftime("%Y-%m-%d %H:%M:%S"),
                decision.action,
                decision.channel or "-",
                "allowed" if decision.allowed else "denied",
                "; ".join(reason.get("message", reason.get("code", "")) for reason in decision.reasons)
                or "-",
            )
            for decision in decisions
        ),
    )
    if not rows:
        return "none yet"
    return format_html(
        "<table><tr><th>time</th><th>action</th><th>channel</th><th>decision</th><th>why</th></tr>{}</table>",
        rows,
    )
