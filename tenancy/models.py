"""The tenant and who acts in it: Workspace, ApiKey, EndUser, and the AuditLog every writer appends to.

These models live in tenancy's code but keep their historical app labels ("onboarding" for
Workspace, ApiKey and EndUser, "guardrails" for AuditLog): the label names the tables, the content
types, django-guardian's object permissions ("onboarding.view_workspace") and the migration state,
so moving the code changed none of them and needed no migration. Their migrations stay in
onboarding/migrations and guardrails/migrations.
"""

from django.conf import settings
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q

from core.db.append_only import AppendOnlyModel, AppendOnlyQuerySet

# An erased profile's external id: the prefix, then a random hex. Ingestion, rebuilds and the
# erasure job recognise erased people by it.
TOMBSTONE_PREFIX = "erased:"


class Workspace(models.Model):
    """The tenant: one SaaS product whose end users are onboarded."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=80, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    paths_published_at = models.DateTimeField(
        null=True,
        blank=True,
        editable=False,
        help_text="When the workspace first published a path. Until then ingestion has no progress "
        "to evaluate and skips it.",
    )
    product_base_url = models.URLField(
        max_length=300,
        blank=True,
        validators=[URLValidator(schemes=["http", "https"])],
        help_text="Where the product itself answers, e.g. https://app.example.com. A step's relative "
        "deep link (/app/projects/new) in a nudge leads there; without it, a nudge to such a step "
        "is sent without its button.",
    )

    class Meta:
        app_label = "onboarding"
        ordering = ["name"]
        # Granted per workspace with django-guardian: the second pair of eyes on nudge templates.
        permissions = [("approve_nudge_templates", "Can approve nudge templates")]

    def __str__(self) -> str:
        return self.name


class ApiKey(models.Model):
    """A key a client authenticates with. Only a SHA-256 digest is stored; the key is shown once."""

    class Kind(models.TextChoices):
        WRITE = "write", "Write key (event ingestion, safe in client apps)"
        SECRET = "secret", "Secret key (server API)"

    class Scope(models.TextChoices):
        EVENTS_WRITE = "events:write", "Send events"
        SERVER = "server", "Server API"

    DEFAULT_SCOPES = {
        Kind.WRITE: [Scope.EVENTS_WRITE],
        Kind.SECRET: [Scope.EVENTS_WRITE, Scope.SERVER],
    }

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200)
    kind = models.CharField(max_length=10, choices=Kind.choices)
    scopes = models.JSONField(default=list)
    prefix = models.CharField(max_length=16, help_text="The first characters, to recognise a key.")
    key_digest = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        app_label = "onboarding"
        verbose_name = "API key"
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


# Traits promoted to columns: the features that paths target and models learn from.
FEATURE_TRAITS = ("persona", "signup_source", "company_size", "use_case", "locale", "timezone")


class EndUser(models.Model):
    """A person being onboarded. Contact data lives apart, in Contact."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="end_users")
    external_id = models.CharField(
        max_length=255, null=True, blank=True, help_text="Segment userId: the product's own id."
    )
    traits = models.JSONField(default=dict, blank=True, help_text="Non-contact traits (features).")
    persona = models.CharField(max_length=100, blank=True)
    signup_source = models.CharField(max_length=100, blank=True)
    company_size = models.CharField(max_length=100, blank=True)
    use_case = models.CharField(max_length=100, blank=True)
    locale = models.CharField(max_length=35, blank=True)
    timezone = models.CharField(max_length=64, blank=True)
    group_id = models.CharField(max_length=255, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        app_label = "onboarding"
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "external_id"],
                condition=Q(external_id__isnull=False),
                name="enduser_unique_external_id",
            )
        ]

    def __str__(self) -> str:
        return self.external_id or f"anonymous #{self.pk}"


# Identify traits that are contact data: they go to Contact, never to features or events.
CONTACT_TRAITS = frozenset(
    {
        "email",
        "phone",
        "name",
        "firstName",
        "first_name",
        "lastName",
        "last_name",
        "address",
    }
)


class AuditLog(AppendOnlyModel):
    """Who changed what, when: admin changes, keys, consent, exports, erasures, model promotions."""

    workspace = models.ForeignKey(
        Workspace, null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    actor_label = models.CharField(max_length=200, help_text="Admin user name, API key prefix or 'system'.")
    action = models.CharField(max_length=60, db_index=True)
    object_type = models.CharField(max_length=100, blank=True)
    object_id = models.CharField(max_length=64, blank=True)
    object_repr = models.CharField(max_length=200, blank=True)
    changes = models.JSONField(default=dict, blank=True, help_text='{"before": {...}, "after": {...}}')
    request_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        app_label = "guardrails"
        ordering = ["-created_at", "-pk"]
        # The admin's exact searches (an object's history, a request's rows) and its per-workspace list.
        indexes = [
            models.Index(fields=["object_id"], name="auditlog_object_idx"),
            models.Index(fields=["request_id"], name="auditlog_request_idx"),
            models.Index(fields=["workspace", "-created_at"], name="auditlog_workspace_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.actor_label} {self.action} {self.object_repr}"
