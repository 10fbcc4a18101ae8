"""Guardrails: consent, preferences, suppression, policy decisions, audit, LLM calls, abuse flags.

Every row belongs to a workspace. Current consent is derived from the ConsentRecord ledger and
never stored twice; AuditLog and LLMCall are append-only; AuditLog is
tenancy's (tenancy/models.py), kept under this app's label.
"""

from django.db import models

from core.db.append_only import AppendOnlyModel
from tenancy.models import EndUser, Workspace


class Channel(models.TextChoices):
    EMAIL = "email", "Email"
    SMS = "sms", "SMS"
    PUSH = "push", "Web push"
    IN_APP = "in_app", "In-app"
    INTERCOM = "intercom", "Intercom"


class Purpose(models.TextChoices):
    ONBOARDING = "onboarding", "Onboarding"
    MARKETING = "marketing", "Marketing"


class DataRegion(models.TextChoices):
    US = "us", "United States"
    EU = "eu", "European Union"


class WorkspacePolicy(models.Model):
    """A workspace's guardrail settings; a workspace without a row gets the defaults."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="policy")
    daily_nudge_cap = models.PositiveSmallIntegerField(
        default=1, help_text="Nudges per user per calendar day in the user's time zone, all channels."
    )
    quiet_hours_start = models.TimeField(
        null=True, blank=True, help_text="Default quiet hours (user's local time) when the user set none."
    )
    quiet_hours_end = models.TimeField(null=True, blank=True)
    llm_daily_budget_usd = models.DecimalField(max_digits=10, decimal_places=4, default=5)
    data_region = models.CharField(max_length=2, choices=DataRegion.choices, default=DataRegion.US)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        verbose_name_plural = "workspace policies"

    def __str__(self) -> str:
        return f"Policy of {self.workspace}"


class ConsentRecord(models.Model):
    """One grant or withdrawal of consent. The ledger is the only store of consent."""

    class Source(models.TextChoices):
        API = "api", "API"
        PREFERENCE_CENTRE = "preference_centre", "Preference centre"
        UNSUBSCRIBE_LINK = "unsubscribe_link", "Unsubscribe link"
        ADMIN = "admin", "Admin"
        IMPORT = "import", "Import"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    end_user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="consent_records")
    channel = models.CharField(max_length=10, choices=Channel.choices)
    purpose = models.CharField(max_length=12, choices=Purpose.choices)
    granted = models.BooleanField()
    source = models.CharField(max_length=20, choices=Source.choices)
    recorded_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-recorded_at", "-pk"]
        indexes = [
            models.Index(
                fields=["end_user", "channel", "purpose", "-recorded_at"], name="consent_current_idx"
            )
        ]

    def __str__(self) -> str:
        verb = "granted" if self.granted else "withdrew"
        return f"{self.end_user} {verb} {self.channel}/{self.purpose}"


class Preference(models.Model):
    """What an end user set in the preference centre besides consent: quiet hours and snooze."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    end_user = models.OneToOneField(EndUser, on_delete=models.CASCADE, related_name="preference")
    quiet_hours_start = models.TimeField(
        null=True, blank=True, help_text="Local time in the user's time zone."
    )
    quiet_hours_end = models.TimeField(null=True, blank=True)
    snooze_until = models.DateTimeField(null=True, blank=True)
    do_not_disturb = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"Preferences of {self.end_user}"


class Suppression(models.Model):
    """An address or person that must not be contacted (or resurrected, after erasure).

    Keyed by a SHA-256 digest of the workspace and the address or user id, so an erased person's
    suppression does not keep their identifier.
    """

    class Reason(models.TextChoices):
        HARD_BOUNCE = "hard_bounce", "Hard bounce"
        SPAM_COMPLAINT = "spam_complaint", "Spam complaint"
        UNSUBSCRIBED = "unsubscribed", "Unsubscribed"
        ERASED = "erased", "Erased (GDPR/CCPA)"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    channel = models.CharField(max_length=10, choices=Channel.choices, blank=True, help_text="Blank: all.")
    subject_digest = models.CharField(max_length=64, help_text="SHA-256 of the address or user id.")
    reason = models.CharField(max_length=20, choices=Reason.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "channel", "subject_digest"], name="suppression_unique_subject"
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_reason_display()} ({self.channel or 'all channels'})"


class PolicyDecision(models.Model):
    """Why a nudge, an LLM call, an export or an erasure was or was not allowed."""

    class Action(models.TextChoices):
        NUDGE_SEND = "nudge.send", "Send a nudge"
        LLM_CALL = "llm.call", "Call the LLM"
        DATA_EXPORT = "data.export", "Export data"
        DATA_ERASE = "data.erase", "Erase data"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    end_user = models.ForeignKey(
        EndUser, null=True, blank=True, on_delete=models.SET_NULL, related_name="policy_decisions"
    )
    action = models.CharField(max_length=20, choices=Action.choices)
    channel = models.CharField(max_length=10, choices=Channel.choices, blank=True)
    allowed = models.BooleanField()
    reasons = models.JSONField(default=list, help_text="Each rule's code and message, in order.")
    decided_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-decided_at"]
        indexes = [models.Index(fields=["end_user", "-decided_at"], name="policydecision_user_idx")]

    def __str__(self) -> str:
        return f"{self.action} {'allowed' if self.allowed else 'denied'}"


class NudgeCapCounter(models.Model):
    """Nudges allowed to a user on one calendar day in their time zone: the frequency cap's
    counter when Redis is not configured or not reachable (guardrails/policy/caps.py)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    end_user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="+")
    local_date = models.DateField()
    count = models.PositiveSmallIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["end_user", "local_date"], name="nudgecapcounter_unique_day")
        ]

    def __str__(self) -> str:
        return f"{self.count} nudge(s) on {self.local_date}"


class LLMCall(AppendOnlyModel):
    """One LLM call (or a call that was blocked or fell back): its redacted input and outcome."""

    class Outcome(models.TextChoices):
        OK = "ok", "Used"
        CACHED = "cached", "Cached response"
        FALLBACK = "fallback", "Fell back to the static template"
        BLOCKED = "blocked", "Blocked before the call"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    end_user = models.ForeignKey(
        EndUser, null=True, blank=True, on_delete=models.SET_NULL, related_name="llm_calls"
    )
    purpose = models.CharField(max_length=60, default="nudge.personalise")
    model = models.CharField(max_length=100, blank=True)
    redacted_input = models.JSONField(default=dict)
    output = models.JSONField(default=dict, blank=True)
    prompt_tokens = models.PositiveIntegerField(default=0)
    completion_tokens = models.PositiveIntegerField(default=0)
    cost_usd = models.DecimalField(max_digits=10, decimal_places=6, default=0)
    latency_ms = models.PositiveIntegerField(default=0)
    outcome = models.CharField(max_length=10, choices=Outcome.choices)
    fallback_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = "LLM call"
        ordering = ["-created_at", "-pk"]
        # The daily LLM budget sums a workspace's calls of the day (guardrails.policy.rules).
        indexes = [models.Index(fields=["workspace", "created_at"], name="llmcall_workspace_day_idx")]

    def __str__(self) -> str:
        return f"{self.model or 'LLM'} {self.get_outcome_display()}"


class AbuseFlag(models.Model):
    """An anomaly seen on an API key or an end user, for a human to look at."""

    class Kind(models.TextChoices):
        EVENT_RATE = "event_rate", "Event rate far over baseline"
        IDENTIFY_RATE = "identify_rate", "Identify rate far over baseline"
        INVALID_PAYLOADS = "invalid_payloads", "Repeated invalid payloads"
        TOKEN_MISUSE = "token_misuse", "End-user token misuse"
        RATE_LIMITED = "rate_limited", "Rate limit reached"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    api_key = models.ForeignKey(
        "onboarding.ApiKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    end_user = models.ForeignKey(EndUser, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    detail = models.JSONField(default=dict, blank=True, help_text="Rates and baselines; never payloads.")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return self.get_kind_display()


class WorkspaceSecret(models.Model):
    """A provider credential (SendGrid, Twilio, Intercom, OpenAI ...), encrypted at rest."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=100, help_text="e.g. sendgrid_api_key")
    ciphertext = models.TextField(editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["workspace", "name"], name="workspacesecret_unique")]

    def __str__(self) -> str:
        return self.name
