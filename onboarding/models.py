"""The people being onboarded (their identities and Contact), their events and their progress.

The tenant and the end user themselves (Workspace, EndUser) are tenancy's (tenancy/models.py).
Every row belongs to a workspace, directly or through its parent; selectors scope every read.
"""

from django.db import models
from django.db.models import Q

from tenancy.models import EndUser, Workspace


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
        indexes = [
            models.Index(fields=["workspace", "status"], name="enrollment_status_idx"),
            # The enrollments list and the analytics reads by enrolment date, newest first.
            models.Index(fields=["workspace", "-enrolled_at"], name="enrollment_enrolled_idx"),
        ]

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
