"""Factories for the nudges app, shared by its tests."""

import factory
from django.utils import timezone

from nudges.models import (
    ChannelProvider,
    Nudge,
    NudgeSettings,
    NudgeTemplate,
    PushSubscription,
    TemplateVersion,
    Trigger,
)
from tests.factories import EndUserFactory, WorkspaceFactory


class NudgeSettingsFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NudgeSettings
        django_get_or_create = ("workspace",)

    workspace = factory.SubFactory(WorkspaceFactory)
    postal_address = "Acme Inc., 1 Market Street, San Francisco, CA 94105"
    allowed_link_domains = factory.LazyFunction(lambda: ["app.example.com"])


class TriggerFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Trigger

    workspace = factory.SubFactory(WorkspaceFactory)
    name = factory.Sequence(lambda number: f"Trigger {number}")
    kind = Trigger.Kind.STUCK
    channels = factory.LazyFunction(lambda: ["email"])


class NudgeTemplateFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = NudgeTemplate

    trigger = factory.SubFactory(TriggerFactory)
    workspace = factory.SelfAttribute("trigger.workspace")
    name = factory.Sequence(lambda number: f"Template {number}")
    channel = "email"


class TemplateVersionFactory(factory.django.DjangoModelFactory):
    """An active version (what the pipeline sends); pass status="draft" for a draft."""

    class Meta:
        model = TemplateVersion

    template = factory.SubFactory(NudgeTemplateFactory)
    number = factory.Sequence(lambda number: number + 1)
    variant = "A"
    status = TemplateVersion.Status.ACTIVE
    subject = "Finish {{ step_title }}"
    body = "Hi {{ first_name }}, you are {{ percent_complete }}% through {{ path_name }}."
    cta_text = "Continue"
    cta_url = "https://app.example.com/{{ step_link }}"
    activated_at = factory.LazyFunction(timezone.now)


class ChannelProviderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ChannelProvider

    workspace = factory.SubFactory(WorkspaceFactory)
    channel = "email"
    provider = ChannelProvider.Provider.SENDGRID
    priority = 1


class PushSubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = PushSubscription

    end_user = factory.SubFactory(EndUserFactory)
    workspace = factory.SelfAttribute("end_user.workspace")
    endpoint = factory.Sequence(lambda number: f"https://push.example.com/send/{number}")
    p256dh = "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM"
    auth = "tBHItJI5svbpez7KI4CCXg"


class NudgeFactory(factory.django.DjangoModelFactory):
    """A nudge that was sent by email, with its content."""

    class Meta:
        model = Nudge

    trigger = factory.SubFactory(TriggerFactory)
    workspace = factory.SelfAttribute("trigger.workspace")
    end_user = factory.SubFactory(EndUserFactory, workspace=factory.SelfAttribute("..trigger.workspace"))
    occasion = factory.Sequence(lambda number: f"occasion-{number}")
    idempotency_key = factory.LazyAttribute(
        lambda nudge: f"{nudge.trigger.pk}:{nudge.end_user.pk}:{nudge.occasion}"
    )
    status = Nudge.Status.SENT
    channel = "email"
    subject = "Finish your setup"
    body = "You are almost there."
    cta_text = "Continue"
    cta_url = "https://app.example.com/setup"
    sent_at = factory.LazyFunction(timezone.now)


# --- Tracking, webhooks and the in-app inbox (webhooks, inbox API, conversion) ----------------------


class InAppNudgeFactory(NudgeFactory):
    """An in-app nudge the pipeline sent and marked delivered: it shows in the user's inbox."""

    channel = "in_app"
    status = Nudge.Status.DELIVERED
    ui_component = "modal"
    delivered_at = factory.LazyFunction(timezone.now)


# --- Channel gateways and delivery (nudges.gateways, nudges.delivery.failover) -----------------------------


class ProviderWithSecretFactory(ChannelProviderFactory):
    """A ChannelProvider whose key is stored as its WorkspaceSecret: `secret="..."` sets the
    value (default "test-api-key"), `secret=""` stores none."""

    class Meta:
        skip_postgeneration_save = True

    secret_name = factory.Sequence(lambda number: f"provider_key_{number}")

    @factory.post_generation
    def secret(provider, create, value, **kwargs):
        from guardrails.secrets.services import workspace_secret_set

        if create and value != "":
            workspace_secret_set(
                workspace=provider.workspace, name=provider.secret_name, value=value or "test-api-key"
            )


# --- LLM personalisation (nudges.llm.personalize, nudges.llm.output) ---------------------------------


class LLMCallFactory(factory.django.DjangoModelFactory):
    """An LLM call already made today: what the workspace's daily LLM budget counts."""

    class Meta:
        model = "guardrails.LLMCall"

    end_user = factory.SubFactory(EndUserFactory)
    workspace = factory.SelfAttribute("end_user.workspace")
    model = "gpt-4o-mini"
    prompt_tokens = 1000
    completion_tokens = 100
    cost_usd = "0.000210"
    latency_ms = 800
    outcome = "ok"


# --- Template workflow and admin (nudges.content.versions, nudges.admin*) -----------------------


class DraftVersionFactory(TemplateVersionFactory):
    """A draft that passes every check of an email template (the workspace needs NudgeSettings)."""

    status = TemplateVersion.Status.DRAFT
    activated_at = None
    cta_url = "{{ step_link }}"


class FailedNudgeFactory(NudgeFactory):
    """A dead letter: every attempt failed."""

    status = Nudge.Status.FAILED
    sent_at = None
    attempts = 3
    last_error = "SendGrid answered 503"
    failed_at = factory.LazyFunction(timezone.now)


class NudgeEventFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = "nudges.NudgeEvent"

    nudge = factory.SubFactory(NudgeFactory)
    status = Nudge.Status.SENT
    source = "pipeline"
