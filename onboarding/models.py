"""Tenancy (Workspace, ApiKey), the people being onboarded (EndUser, Contact) and their events.

Every row belongs to a workspace, directly or through its parent; selectors scope every read.
"""

from django.conf import settings
from django.core.validators import URLValidator
from django.db import models
from django.db.models import Q


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
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "external_id"],
                condition=Q(external_id__isnull=False),
                name="enduser_unique_external_id",
            )
        ]

    def __str__(self) -> str:
        return self.external_id or f"anonymous #{self.pk}"


class AnonymousIdentity(models.Model):
    """A device or browser id (Segment anonymousId) that resolves to one end user."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    anonymous_id = models.CharField(max_length=255)
    end_user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="anonymous_identities")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name_plural = "anonymous identities"
        constraints = [
            models.UniqueConstraint(fields=["workspace", "anonymous_id"], name="anonymousidentity_unique_id")
        ]

    def __str__(self) -> str:
        return self.anonymous_id


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


class Contact(models.Model):
    """How to reach an end user. Read only by channel gateways."""

    end_user = models.OneToOneField(EndUser, on_delete=models.CASCADE, related_name="contact")
    email = models.EmailField(max_length=254, blank=True)
    phone = models.CharField(max_length=32, blank=True, help_text="E.164 when it could be parsed.")
    first_name = models.CharField(max_length=150, blank=True)
    last_name = models.CharField(max_length=150, blank=True)
    name = models.CharField(max_length=300, blank=True)
    address = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"contact of {self.end_user}"


class Event(models.Model):
    """One Segment call, append-only. `timestamp` is corrected for client clock skew."""

    class Type(models.TextChoices):
        TRACK = "track"
        IDENTIFY = "identify"
        PAGE = "page"
        SCREEN = "screen"
        GROUP = "group"
        ALIAS = "alias"

    # No index of their own: the composite indexes below lead with these columns.
    # No database-level foreign key to the workspace: on this hot, append-only table it cost an
    # index probe per event and a KEY SHARE lock that every concurrent batch took on the same
    # workspace row. Workspaces are deleted only through Django, which cascades. The end user's
    # key stays: it makes a batch that raced a profile merge fail and be retried, not orphaned.
    workspace = models.ForeignKey(
        Workspace, on_delete=models.CASCADE, related_name="+", db_index=False, db_constraint=False
    )
    end_user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="events", db_index=False)
    type = models.CharField(max_length=10, choices=Type.choices)
    name = models.CharField(
        max_length=255, blank=True, help_text="Event name for track, page or screen name."
    )
    message_id = models.CharField(max_length=255)
    user_id = models.CharField(max_length=255, blank=True, help_text="userId as sent.")
    anonymous_id = models.CharField(max_length=255, blank=True, help_text="anonymousId as sent.")
    group_id = models.CharField(max_length=255, blank=True)
    previous_id = models.CharField(max_length=255, blank=True)
    properties = models.JSONField(
        default=dict, blank=True, help_text="Properties, or traits for identify and group."
    )
    context = models.JSONField(default=dict, blank=True)
    timestamp = models.DateTimeField()
    original_timestamp = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "message_id"], name="event_unique_message")
        ]
        indexes = [
            models.Index(fields=["workspace", "name", "timestamp"], name="event_funnel_idx"),
            models.Index(fields=["end_user", "timestamp"], name="event_user_time_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type} {self.name}".strip()


class Enrollment(models.Model):
    """One end user on one path version. State is rebuildable from events and completions.

    `revision` grows by one on every change; a write carrying a stale revision gets 409.
    """

    class Status(models.TextChoices):
        ACTIVE = "active"
        COMPLETED = "completed"
        ABANDONED = "abandoned"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    end_user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="enrollments")
    path_version = models.ForeignKey(
        "paths.PathVersion", on_delete=models.PROTECT, related_name="enrollments"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.ACTIVE)
    current_step_key = models.CharField(max_length=80, blank=True)
    answers = models.JSONField(default=dict, blank=True, help_text="{step key: {question: value}}")
    revision = models.PositiveIntegerField(default=1)
    decision_reason = models.TextField(blank=True, help_text="Why the planner chose this path.")
    enrolled_at = models.DateTimeField()
    step_entered_at = models.DateTimeField(help_text="When the current step became current.")
    completed_at = models.DateTimeField(null=True, blank=True)
    stuck_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["end_user"], condition=Q(status="active"), name="enrollment_one_active"
            )
        ]
        indexes = [models.Index(fields=["workspace", "status"], name="enrollment_status_idx")]

    def __str__(self) -> str:
        return f"{self.end_user} on {self.path_version}"


class StepCompletion(models.Model):
    """How and when a step was completed. `back` reverts it (kept, with reverted_at)."""

    class Method(models.TextChoices):
        EVENT = "event"
        API = "api"
        ANSWERS = "answers"
        ADMIN = "admin"
        SKIP = "skip"

    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="completions")
    step_key = models.CharField(max_length=80)
    method = models.CharField(max_length=10, choices=Method.choices)
    event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    completed_at = models.DateTimeField(help_text="Event time for event completions.")
    recorded_at = models.DateTimeField(auto_now_add=True)
    reverted_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["enrollment", "step_key"], name="stepcompletion_unique")
        ]

    def __str__(self) -> str:
        return f"{self.step_key} ({self.method})"


class EnrollmentSignal(models.Model):
    """Something the nudge pipeline or a human should act on: a stuck user, an ambiguous step."""

    class Kind(models.TextChoices):
        STUCK = "stuck"
        NEEDS_REVIEW = "needs_review", "needs human review"

    enrollment = models.ForeignKey(Enrollment, on_delete=models.CASCADE, related_name="signals")
    kind = models.CharField(max_length=20, choices=Kind.choices)
    step_key = models.CharField(max_length=80)
    reason = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    consumed_at = models.DateTimeField(null=True, blank=True, help_text="Taken by the nudge pipeline.")

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["enrollment", "kind", "step_key"],
                condition=Q(resolved_at__isnull=True),
                name="enrollmentsignal_one_open",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} at {self.step_key}"


class AnswerSnapshot(models.Model):
    """The answers of a completed enrollment, as they were at completion; one per enrollment.

    `contribution` lists the (step, question, answer) rows it added to AnswerTotal, so a
    re-completion subtracts exactly what it added, whatever the counting rules are by then.
    """

    enrollment = models.OneToOneField(Enrollment, on_delete=models.CASCADE, related_name="answer_snapshot")
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    path_version = models.ForeignKey("paths.PathVersion", on_delete=models.PROTECT, related_name="+")
    answers = models.JSONField(default=dict, blank=True, help_text="{step key: {question: value}}")
    contribution = models.JSONField(default=list, blank=True, help_text="[[step, question, answer], ...]")
    completed_at = models.DateTimeField()
    schema_version = models.PositiveSmallIntegerField(default=1)
    recorded_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"answers of {self.enrollment_id}"


class AnswerTotal(models.Model):
    """How many completed enrollments of a path version gave each answer to each question.

    Multi-choice answers count once per choice; numbers and booleans count as their JSON text.
    `count` is a plain integer so a signed upsert can apply a re-completion's difference in one
    statement; rows reaching 0 are deleted.
    """

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    path_version = models.ForeignKey("paths.PathVersion", on_delete=models.CASCADE, related_name="+")
    step_key = models.CharField(max_length=80)
    question_key = models.CharField(max_length=80)
    answer = models.CharField(max_length=255)
    count = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["path_version", "step_key", "question_key", "answer"], name="answertotal_unique"
            )
        ]

    def __str__(self) -> str:
        return f"{self.step_key}.{self.question_key} = {self.answer}: {self.count}"
