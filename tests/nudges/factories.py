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
