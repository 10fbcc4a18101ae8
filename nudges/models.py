"""Nudges: the triggers that notice a user needs one, the templates that say it, each send.

Every row belongs to a workspace. A `Nudge` is one attempt to reach one person about one
occasion (its idempotency key), from queued to converted or failed; its `trace` says why each
automated decision about it was taken, for the admin's timeline.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from guardrails.models import Channel, DataRegion, Purpose
from onboarding.models import Enrollment
from tenancy.models import EndUser, Workspace


class NudgeSettings(models.Model):
    """A workspace's nudge settings: compliance text, link allowlist, words it never sends."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="nudge_settings")
    postal_address = models.TextField(
        blank=True,
        help_text="Printed in every email (CAN-SPAM). Email templates cannot be approved without it.",
    )
    allowed_link_domains = models.JSONField(
        default=list,
        blank=True,
        help_text='Domains links may point to, e.g. ["example.com"] (subdomains included).',
    )
    banned_words = models.JSONField(default=list, blank=True, help_text="Words no nudge may contain.")
    sms_opt_out_text = models.CharField(max_length=60, default="Reply STOP to opt out.")
    conversion_window_hours = models.PositiveSmallIntegerField(
        default=48, help_text="A nudge converts when its step is completed within this many hours."
    )
    personalisation_enabled = models.BooleanField(
        default=True, help_text="Personalise with the LLM when it is configured (OPENAI_API_KEY)."
    )
    send_at_active_hour = models.BooleanField(
        default=False,
        help_text="Send email, SMS and push at the user's most active hour within allowed hours.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name = "nudge settings"
        verbose_name_plural = "nudge settings"

    def __str__(self) -> str:
        return f"nudge settings of {self.workspace}"


class Trigger(models.Model):
    """When a user should get a nudge. `config` holds the kind's parameters (nudges.triggers.engine)."""

    class Kind(models.TextChoices):
        WELCOME = "welcome", "Welcome (on enrollment)"
        STUCK = "stuck", "Stuck on a step"
        INACTIVITY = "inactivity", "No events for N days"
        MILESTONE = "milestone", "Milestone (step completed or percent reached)"
        REENGAGEMENT = "reengagement", "Re-engagement (abandoned for N days)"
        CUSTOM = "custom", "A without B within T"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="nudge_triggers")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    config = models.JSONField(default=dict, blank=True)
    channels = models.JSONField(
        default=list,
        help_text='Channels to try, in order, e.g. ["in_app", "email"]: the first one allowed is used.',
    )
    purpose = models.CharField(max_length=12, choices=Purpose.choices, default=Purpose.ONBOARDING)
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["workspace", "name"]

    def __str__(self) -> str:
        return self.name


class NudgeTemplate(models.Model):
    """What a trigger says on one channel, for a persona and locale (blank: any). Its versions
    are the words; several active versions (variants) compete in the bandit."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="nudge_templates")
    trigger = models.ForeignKey(Trigger, on_delete=models.CASCADE, related_name="templates")
    name = models.CharField(max_length=200)
    channel = models.CharField(max_length=10, choices=Channel.choices)
    persona = models.CharField(max_length=100, blank=True, help_text="Blank: any persona.")
    locale = models.CharField(max_length=35, blank=True, help_text="Blank: any locale, e.g. fr or fr-FR.")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["trigger", "channel", "persona", "locale"]
        constraints = [
            models.UniqueConstraint(
                fields=["trigger", "channel", "persona", "locale"], name="nudgetemplate_unique_audience"
            )
        ]

    def __str__(self) -> str:
        return self.name


class TemplateVersion(models.Model):
    """The words of a template: draft, approved by a second admin, active (sent), retired.

    Subject, body, call to action and link may hold {{ variables }} (nudges.content.rendering).
    Immutable once approved; editing makes a new draft.
    """

    class Status(models.TextChoices):
        DRAFT = "draft"
        APPROVED = "approved"
        ACTIVE = "active"
        RETIRED = "retired"

    template = models.ForeignKey(NudgeTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    variant = models.CharField(
        max_length=20, default="A", help_text="Variants compete for the same audience."
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    subject = models.CharField(max_length=200, blank=True, help_text="Email subject, push or Intercom title.")
    body = models.TextField()
    cta_text = models.CharField(max_length=80, blank=True)
    cta_url = models.CharField(
        max_length=500, blank=True, help_text="A deep link or URL; may hold variables."
    )
    check_results = models.JSONField(default=list, blank=True, help_text="The pre-approval checks, last run.")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)
    # Thompson sampling (nudges.content.bandit): sends, and rewards (a click or a conversion, once each).
    sends = models.PositiveIntegerField(default=0)
    rewards = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["template", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["template", "number"], name="templateversion_unique_number"),
            models.UniqueConstraint(
                fields=["template", "variant"],
                condition=Q(status="active"),
                name="templateversion_one_active",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.template} v{self.number} ({self.variant}, {self.status})"


class ChannelProvider(models.Model):
    """A provider that delivers one channel for a workspace: the primary (priority 1) and its
    backups. Keys live encrypted in WorkspaceSecret under `secret_name`."""

    class Provider(models.TextChoices):
        SENDGRID = "sendgrid", "SendGrid"
        MAILGUN = "mailgun", "Mailgun"
        AMAZON_SES = "amazon_ses", "Amazon SES"
        SMTP = "smtp", "SMTP"
        TWILIO = "twilio", "Twilio"
        WEBPUSH = "webpush", "Web push (VAPID)"
        IN_APP = "in_app", "In-app inbox"
        INTERCOM = "intercom", "Intercom"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="channel_providers")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    provider = models.CharField(max_length=12, choices=Provider.choices)
    priority = models.PositiveSmallIntegerField(
        default=1, help_text="1 is tried first; higher ones are backups."
    )
    settings = models.JSONField(
        default=dict, blank=True, help_text="Non-secret settings: from address, account id, API base URL..."
    )
    region = models.CharField(
        max_length=2,
        choices=DataRegion.choices,
        default=DataRegion.US,
        help_text="Where this provider keeps the data it is sent: only workspaces of that region use it.",
    )
    secret_name = models.CharField(
        max_length=100, blank=True, help_text="The WorkspaceSecret holding its key."
    )
    is_active = models.BooleanField(default=True)
    # The circuit breaker (nudges.gateways.breaker).
    consecutive_failures = models.PositiveSmallIntegerField(default=0, editable=False)
    open_until = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.CharField(max_length=300, blank=True, editable=False)

    class Meta:
        ordering = ["workspace", "channel", "priority"]

    def __str__(self) -> str:
        return f"{self.get_provider_display()} for {self.channel} (priority {self.priority})"


class PushSubscription(models.Model):
    """A browser's Web Push subscription (contact data: read only by the push gateway)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    end_user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="push_subscriptions")
    endpoint = models.URLField(max_length=1000)
    p256dh = models.CharField(max_length=200)
    auth = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True, help_text="The push service said it is gone.")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["end_user", "endpoint"], name="pushsubscription_unique_endpoint")
        ]

    def __str__(self) -> str:
        return f"push subscription #{self.pk}"


class Nudge(models.Model):
    """One nudge to one person for one occasion, from queued to converted (or failed)."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        SUPPRESSED = "suppressed"  # a policy or pipeline rule decided not to send
        DEFERRED = "deferred"  # waiting for its send time or the provider's next window
        # Recorded before the provider is called: a worker that dies before recording the answer
        # leaves it here, and the lease's expiry leads to reconciliation, never a blind resend.
        IN_FLIGHT = "in_flight"
        # Reconciliation could not tell whether the provider got it: a person decides in the admin.
        IN_DOUBT = "in_doubt"
        SENT = "sent"
        DELIVERED = "delivered"
        OPENED = "opened"
        CLICKED = "clicked"
        CONVERTED = "converted"
        FAILED = "failed"  # every attempt failed: in the dead-letter list
        BOUNCED = "bounced"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    end_user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="nudges")
    enrollment = models.ForeignKey(
        Enrollment, null=True, blank=True, on_delete=models.SET_NULL, related_name="nudges"
    )
    trigger = models.ForeignKey(Trigger, on_delete=models.CASCADE, related_name="nudges")
    occasion = models.CharField(
        max_length=200, help_text="What this nudge is about: an enrollment, a step, a day."
    )
    idempotency_key = models.CharField(max_length=255)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    channel = models.CharField(max_length=10, choices=Channel.choices, blank=True)
    provider = models.ForeignKey(
        ChannelProvider, null=True, blank=True, on_delete=models.SET_NULL, related_name="nudges"
    )
    template_version = models.ForeignKey(
        TemplateVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="nudges"
    )
    target_step_key = models.CharField(
        max_length=80, blank=True, help_text="The step it aims at (conversion)."
    )
    # What was sent (rendered): shown in the admin, exported under GDPR. No contact data.
    subject = models.CharField(max_length=300, blank=True)
    body = models.TextField(blank=True)
    cta_text = models.CharField(max_length=80, blank=True)
    cta_url = models.CharField(max_length=1000, blank=True)
    ui_component = models.CharField(max_length=20, blank=True)
    personalised = models.BooleanField(default=False)
    llm_call = models.ForeignKey(
        "guardrails.LLMCall", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    trace = models.JSONField(default=list, blank=True, help_text='[{"at", "stage", "message"}]: why.')
    attempts = models.PositiveSmallIntegerField(default=0)
    claimed_until = models.DateTimeField(
        null=True, blank=True, editable=False, help_text="A worker is processing it until then (its lease)."
    )
    lease_token = models.CharField(
        max_length=32, blank=True, editable=False, help_text="The job that holds the lease."
    )
    attempt_key = models.CharField(
        max_length=100,
        blank=True,
        help_text="The idempotency key of the last send handed to a provider (in flight or done).",
    )
    provider_message_id = models.CharField(max_length=255, blank=True, db_index=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    send_after = models.DateTimeField(null=True, blank=True, help_text="Deferred until then.")
    sent_at = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    clicked_at = models.DateTimeField(null=True, blank=True)
    converted_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)
    seen_at = models.DateTimeField(null=True, blank=True, help_text="In-app: shown to the user.")
    dismissed_at = models.DateTimeField(null=True, blank=True, help_text="In-app: dismissed.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "idempotency_key"], name="nudge_unique_idempotency_key"
            )
        ]
        indexes = [
            models.Index(fields=["workspace", "status", "created_at"], name="nudge_status_idx"),
            models.Index(fields=["end_user", "created_at"], name="nudge_user_idx"),
            # The analytics' date ranges (nudges.selectors.nudge_outcome_counts): created, and sent.
            models.Index(fields=["workspace", "created_at"], name="nudge_created_idx"),
            models.Index(fields=["workspace", "sent_at"], name="nudge_sent_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.trigger} → {self.end_user} ({self.status})"


class NudgeEvent(models.Model):
    """The status trail of a nudge: every move, with where it came from (pipeline, a provider's
    webhook, a click, the inbox API)."""

    nudge = models.ForeignKey(Nudge, on_delete=models.CASCADE, related_name="events")
    status = models.CharField(max_length=12, choices=Nudge.Status.choices)
    source = models.CharField(max_length=40, help_text="pipeline, sendgrid, twilio, click, pixel, inbox, ...")
    detail = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"{self.status} ({self.source})"


class CustomTriggerStart(models.Model):
    """An "A" event of an "A without B within T" trigger, waiting for its B or its deadline."""

    trigger = models.ForeignKey(Trigger, on_delete=models.CASCADE, related_name="starts")
    end_user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="+")
    event = models.ForeignKey("onboarding.Event", on_delete=models.CASCADE, related_name="+")
    started_at = models.DateTimeField(help_text="The A event's time.")
    deadline = models.DateTimeField(db_index=True)
    completed_at = models.DateTimeField(null=True, blank=True, help_text="B arrived in time: no nudge.")
    fired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["trigger", "event"], name="customtriggerstart_unique_event")
        ]

    def __str__(self) -> str:
        return f"{self.trigger} for {self.end_user}"


class WebhookDelivery(models.Model):
    """A provider's delivery report already applied (nudges.delivery.webhook_deliveries): a replay of it,
    or the provider's own retry, is acknowledged and not applied twice."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    provider = models.CharField(max_length=20)
    delivery_id = models.CharField(max_length=128, help_text="sg_event_id, or what the provider signed.")
    received_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "provider", "delivery_id"], name="webhookdelivery_unique_delivery"
            )
        ]
        indexes = [models.Index(fields=["workspace", "provider", "received_at"], name="webhookdelivery_age")]

    def __str__(self) -> str:
        return f"{self.provider} {self.delivery_id}"
