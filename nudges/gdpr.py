"""The nudges sections of a GDPR export and erasure (guardrails.gdpr.export / guardrails.gdpr.erasers).

Export: every nudge considered for the person, with what was sent, its status trail and why.
Erasure: the rows stay (send, open and conversion rates stay right) but lose what they said
about the person: content, trace, the trail's details; their push subscriptions are deleted
and their pending custom-trigger waits too.
"""

from guardrails.gdpr.erasers import ERASED, ErasureScope, eraser
from guardrails.gdpr.export import Subject, exporter
from guardrails.gdpr.vacuum import erased_models_register
from nudges.models import CustomTriggerStart, Nudge, NudgeEvent, PushSubscription

CONTENT_FIELDS = ("subject", "body", "cta_text", "cta_url", "ui_component")


@exporter("nudges")
def _nudges(subject: Subject) -> list[dict]:
    nudges = (
        Nudge.objects.filter(workspace=subject.workspace, end_user=subject.end_user)
        .select_related("trigger", "template_version__template", "provider")
        .prefetch_related("events")
        .order_by("created_at", "pk")
    )
    return [
        {
            "id": nudge.pk,
            "trigger": nudge.trigger.name,
            "trigger_kind": nudge.trigger.kind,
            "occasion": nudge.occasion,
            "status": nudge.status,
            "channel": nudge.channel,
            "provider": nudge.provider.provider if nudge.provider else "",
            "template": nudge.template_version.template.name if nudge.template_version else "",
            "variant": nudge.template_version.variant if nudge.template_version else "",
            **{name: getattr(nudge, name) for name in CONTENT_FIELDS},
            "personalised": nudge.personalised,
            "why": nudge.trace,
            "created_at": nudge.created_at,
            "sent_at": nudge.sent_at,
            "status_trail": [
                {"status": event.status, "source": event.source, "at": event.created_at}
                for event in nudge.events.all()
            ],
        }
        for nudge in nudges
    ]


@exporter("push_subscriptions")
def _push_subscriptions(subject: Subject) -> list[dict]:
    return list(
        PushSubscription.objects.filter(workspace=subject.workspace, end_user=subject.end_user)
        .order_by("pk")
        .values("endpoint", "created_at", "revoked_at")
    )


erased_models_register(Nudge, NudgeEvent, PushSubscription, CustomTriggerStart)


@eraser("nudges")
def _erase_nudges(scope: ErasureScope) -> int:
    nudges = Nudge.objects.filter(workspace=scope.workspace, end_user=scope.end_user)
    changed = nudges.update(
        **{name: "" for name in CONTENT_FIELDS},
        trace=[{"at": "", "stage": "erased", "message": ERASED}],
        occasion=ERASED,
        last_error="",
    )
    NudgeEvent.objects.filter(nudge__in=nudges).update(detail={})
    PushSubscription.objects.filter(workspace=scope.workspace, end_user=scope.end_user).delete()
    CustomTriggerStart.objects.filter(trigger__workspace=scope.workspace, end_user=scope.end_user).delete()
    return changed
