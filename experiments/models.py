"""Experiments: arms (variants) of a path, a nudge template or a model, and who got which arm.

An Experiment moves draft -> running -> stopped -> concluded, never back. Its variants carry a
weight in percent (summing to 100) and a payload: a path version (kind=path), a template version
(kind=template) or a model version reference (kind=model). An Assignment is written once, at
path entry, and never rewritten: changing weights or traffic later never moves a user.
"""

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import F, Q

from analytics.metrics.definitions import METRIC_NAMES
from tenancy.models import EndUser, Workspace

METRIC_CHOICES = [(name, name) for name in METRIC_NAMES]


class Experiment(models.Model):
    class Kind(models.TextChoices):
        PATH = "path", "Whole onboarding paths (path versions)"
        TEMPLATE = "template", "Nudge template versions"
        MODEL = "model", "Model versions"

    class Status(models.TextChoices):
        DRAFT = "draft"
        RUNNING = "running"
        STOPPED = "stopped"
        CONCLUDED = "concluded"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    key = models.SlugField(max_length=80, help_text="Stable identifier; the default hashing seed.")
    name = models.CharField(max_length=200)
    hypothesis = models.TextField(blank=True)
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PATH)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.DRAFT)
    traffic_share = models.FloatField(
        default=1.0,
        validators=[MinValueValidator(0.0), MaxValueValidator(1.0)],
        help_text="Share of the audience in the experiment (GrowthBook's coverage), 0 to 1.",
    )
    seed = models.CharField(
        max_length=100, blank=True, help_text="Hashing seed; empty means the experiment key."
    )
    # Audience: same targeting as Path.AUDIENCE_FIELDS; an empty list matches everyone.
    audience_personas = models.JSONField(default=list, blank=True)
    audience_use_cases = models.JSONField(default=list, blank=True)
    audience_company_sizes = models.JSONField(default=list, blank=True)
    audience_signup_sources = models.JSONField(default=list, blank=True)
    path = models.ForeignKey(
        "paths.Path",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The path whose entry is split (kind=path).",
    )
    primary_metric = models.CharField(max_length=80, choices=METRIC_CHOICES, default="activation_rate")
    guardrail_metrics = models.JSONField(default=list, blank=True, help_text="Metric names.")
    minimum_sample_per_arm = models.PositiveIntegerField(default=1000)
    minimum_duration_days = models.PositiveSmallIntegerField(default=7)
    maximum_duration_days = models.PositiveSmallIntegerField(default=30)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    stopped_at = models.DateTimeField(null=True, blank=True)
    concluded_at = models.DateTimeField(null=True, blank=True)
    # The decision job (experiments/decisions.py): its last verdict, the planned end it moved
    # (minimum_duration_days until extended, never past maximum_duration_days), and the results
    # frozen when the experiment was concluded, which its page then shows.
    last_decision = models.JSONField(
        default=dict, blank=True, help_text="{action, winner, reason, evaluated_at} of the last evaluation."
    )
    last_decision_at = models.DateTimeField(null=True, blank=True)
    planned_duration_days = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="The planned end after extensions; empty means the minimum duration."
    )
    final_results = models.JSONField(
        null=True, blank=True, help_text="The results as they stood at the conclusion (JSON)."
    )

    AUDIENCE_FIELDS = {
        "persona": "audience_personas",
        "use_case": "audience_use_cases",
        "company_size": "audience_company_sizes",
        "signup_source": "audience_signup_sources",
    }

    class Meta:
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "key"], name="experiment_unique_key"),
            models.CheckConstraint(
                condition=Q(traffic_share__gte=0) & Q(traffic_share__lte=1), name="experiment_traffic_share"
            ),
            models.CheckConstraint(
                condition=Q(minimum_duration_days__lte=F("maximum_duration_days")),
                name="experiment_duration_order",
            ),
        ]
        indexes = [
            # The planner reads a workspace's running experiments at every path entry.
            models.Index(fields=["workspace", "status"], name="experiment_status_idx"),
        ]

    def __str__(self) -> str:
        return self.key

    @property
    def hash_seed(self) -> str:
        return self.seed or self.key


class Variant(models.Model):
    """One arm. Position 0 is control: the arm a user gets when allocation fails."""

    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="variants")
    key = models.SlugField(max_length=40)
    position = models.PositiveSmallIntegerField(default=0, help_text="Order of the arm; 0 is control.")
    weight = models.PositiveSmallIntegerField(
        validators=[MaxValueValidator(100)], help_text="Percent of the experiment's traffic."
    )
    path_version = models.ForeignKey(
        "paths.PathVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    template_version = models.ForeignKey(
        "nudges.TemplateVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    model_version = models.CharField(max_length=100, blank=True, help_text="name@version (kind=model).")

    class Meta:
        ordering = ["experiment", "position"]
        constraints = [
            models.UniqueConstraint(fields=["experiment", "key"], name="variant_unique_key"),
            models.UniqueConstraint(fields=["experiment", "position"], name="variant_unique_position"),
        ]

    def __str__(self) -> str:
        return f"{self.experiment_id}:{self.key}"

    @property
    def is_control(self) -> bool:
        return self.position == 0


class Assignment(models.Model):
    """One user's arm in one experiment; written once at path entry, never rewritten."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    experiment = models.ForeignKey(Experiment, on_delete=models.CASCADE, related_name="assignments")
    end_user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="+")
    variant = models.ForeignKey(Variant, on_delete=models.PROTECT, related_name="assignments")
    enrollment = models.ForeignKey(
        "onboarding.Enrollment", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    assigned_at = models.DateTimeField()
    hash_value = models.FloatField(
        null=True, blank=True, help_text="GrowthBook v2 hash in [0, 1); empty when allocation failed."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["experiment", "end_user"], name="assignment_one_per_user"),
        ]
        indexes = [
            # A user's arms (API, enrollment state, GDPR export).
            models.Index(fields=["workspace", "end_user"], name="assignment_user_idx"),
            # Counts per arm and the results' reads.
            models.Index(fields=["experiment", "variant", "assigned_at"], name="assignment_arm_idx"),
            models.Index(fields=["enrollment"], name="assignment_enrollment_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.end_user_id} -> {self.variant_id}"


class Exposure(models.Model):
    """When the user saw their arm: first, last and how often (one row per assignment). For a
    path experiment, entering the path is the first exposure."""

    assignment = models.OneToOneField(Assignment, on_delete=models.CASCADE, related_name="exposure")
    first_exposed_at = models.DateTimeField()
    last_exposed_at = models.DateTimeField()
    count = models.PositiveIntegerField(default=1)

    def __str__(self) -> str:
        return f"exposure of {self.assignment_id} x{self.count}"
