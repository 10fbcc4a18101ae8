"""The demo workspace's nudges (`make run`): triggers and active templates on the in-app channel,
which is built in (no provider to configure), so the inbox API and the websocket show nudges at
once.

Created after the simulated history is seeded, so only users who sign up from then on get a
welcome. The templates are written active directly, as an import would: there is no second
admin in the demo to approve them.
"""

from django.db import transaction
from django.utils import timezone

from nudges.models import NudgeSettings, NudgeTemplate, TemplateVersion, Trigger
from tenancy.models import Workspace

TRIGGERS = [
    {
        "name": "Welcome",
        "kind": Trigger.Kind.WELCOME,
        "config": {},
        "variants": [
            ("A", "Welcome aboard", "Start with {{ step_title }}: it takes two minutes.", "Let's go"),
            ("B", "Good to see you", "{{ step_title }} is your first step on {{ path_name }}.", "Start"),
        ],
    },
    {
        "name": "Stuck on a step",
        "kind": Trigger.Kind.STUCK,
        "config": {},
        "variants": [
            ("A", "Need a hand?", "Most teams finish {{ step_title }} in a few minutes.", "Show me")
        ],
    },
    {
        "name": "Halfway there",
        "kind": Trigger.Kind.MILESTONE,
        "config": {"percent": 50},
        "variants": [
            ("A", "Halfway there", "You are {{ percent_complete }}% through {{ path_name }}.", "Keep going")
        ],
    },
]


@transaction.atomic
def demo_nudges_create(*, workspace: Workspace) -> int:
    """Create the demo's triggers once; returns how many were created (0 when they exist)."""
    if Trigger.objects.filter(workspace=workspace).exists():
        return 0
    NudgeSettings.objects.get_or_create(
        workspace=workspace,
        defaults={
            "postal_address": "Demo SaaS Inc., 1 Example Street, Springfield",
            "allowed_link_domains": [],
        },
    )
    now = timezone.now()
    for spec in TRIGGERS:
        trigger = Trigger.objects.create(
            workspace=workspace,
            name=spec["name"],
            kind=spec["kind"],
            config=spec["config"],
            channels=["in_app"],
        )
        template = NudgeTemplate.objects.create(
            workspace=workspace, trigger=trigger, name=f"{spec['name']} (in-app)", channel="in_app"
        )
        for number, (variant, subject, body, cta_text) in enumerate(spec["variants"], start=1):
            TemplateVersion.objects.create(
                template=template,
                number=number,
                variant=variant,
                status=TemplateVersion.Status.ACTIVE,
                subject=subject,
                body=body,
                cta_text=cta_text,
                cta_url="{{ step_link }}",
                activated_at=now,
            )
    return len(TRIGGERS)
