"""Onboarding paths: what a growth team designs, versioned so running enrollments never change.

A Path has versions; a PathVersion is a draft until published and immutable afterwards (editing
a published path means cloning it to a new draft). An enrollment pins the version it started on.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from tenancy.models import Workspace


class Path(models.Model):
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="paths")
    key = models.SlugField(max_length=80, help_text="Stable identifier, used by exports and the API.")
    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    # Audience: each list holds accepted values of that end-user feature; an empty list matches all.
    audience_personas = models.JSONField(default=list, blank=True)
    audience_use_cases = models.JSONField(default=list, blank=True)
    audience_company_sizes = models.JSONField(default=list, blank=True)
    audience_signup_sources = models.JSONField(default=list, blank=True)
    priority = models.IntegerField(default=0, help_text="Higher wins when several paths match.")
    is_default = models.BooleanField(
        default=False, help_text="Taken when no other path's audience matches. One per workspace."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    AUDIENCE_FIELDS = {
        "persona": "audience_personas",
        "use_case": "audience_use_cases",
        "company_size": "audience_company_sizes",
        "signup_source": "audience_signup_sources",
    }

    class Meta:
        ordering = ["-priority", "name"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="path_unique_key"),
            models.UniqueConstraint(
                fields=["workspace"], condition=Q(is_default=True), name="path_one_default"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class PathVersion(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        PUBLISHED = "published"
        ARCHIVED = "archived"

    path = models.ForeignKey(Path, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    changelog = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    published_at = models.DateTimeField(null=True, blank=True)
    published_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    archived_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["path", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["path", "number"], name="pathversion_unique_number"),
            # New enrollments go to the one published version; older ones are archived.
            models.UniqueConstraint(
                fields=["path"], condition=Q(status="published"), name="pathversion_one_published"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.path} v{self.number} ({self.status})"

    @property
    def is_editable(self) -> bool:
        return self.status == self.Status.DRAFT


class Step(models.Model):
    class Completion(models.TextChoices):
        EVENT = "event", "When an event matches the rule"
        API = "api", "Explicitly, through the API"
        FORM = "form", "When the form's answers are valid"

    class UiComponent(models.TextChoices):
        TOOLTIP = "tooltip"
        MODAL = "modal"
        SIDEBAR_HINT = "sidebar_hint"
        CHECKLIST = "checklist"
        BANNER = "banner"
        NONE = "none"

    class WindowAnchor(models.TextChoices):
        PREVIOUS_STEP = "previous_step", "the previous step's completion"
        ENROLLMENT = "enrollment", "enrollment"

    path_version = models.ForeignKey(PathVersion, on_delete=models.CASCADE, related_name="steps")
    key = models.SlugField(max_length=80)
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    order = models.PositiveIntegerField(default=0)
    optional = models.BooleanField(default=False, help_text="Optional steps may be skipped.")
    expected_duration = models.DurationField(null=True, blank=True)
    ui_component = models.CharField(max_length=20, choices=UiComponent.choices, default=UiComponent.CHECKLIST)
    deep_link = models.CharField(max_length=500, blank=True)
    completion = models.CharField(max_length=10, choices=Completion.choices, default=Completion.EVENT)
    # Event rule: `event_name` seen `count` times with every condition true, optionally within
    # `window` of the anchor. Conditions: [{"property": "plan", "operator": "eq", "value": "pro"}]
    # with operators eq, neq, in, not_in, exists, not_exists, gt, gte, lt, lte, contains.
    event_name = models.CharField(max_length=255, blank=True)
    conditions = models.JSONField(default=list, blank=True)
    count = models.PositiveIntegerField(default=1)
    window = models.DurationField(null=True, blank=True)
    window_anchor = models.CharField(
        max_length=20, choices=WindowAnchor.choices, default=WindowAnchor.PREVIOUS_STEP
    )
    # Form step: [{"key": "role", "label": "Your role", "type": "choice", "required": true,
    #              "choices": ["admin", "developer"]}]; types text, choice, multi_choice, number, boolean.
    questions = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["path_version", "order", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["path_version", "key"], name="step_unique_key"),
        ]

    def __str__(self) -> str:
        return f"{self.key}: {self.title}"
