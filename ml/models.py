"""The ML layer's rows: model versions and their alerts, the feature store's PostgreSQL copy, the
planner's logged path choices (what training and the offline policy estimate learn from), and the
weekly drift reports.

PostgreSQL is the source of truth: Redis holds the real-time counters (ml/features/store.py), a
FeatureSnapshot row what the daily job derived; a model's artifact lives in the `ml_artifacts`
storage, its digest here.
"""

from django.conf import settings
from django.db import models
from django.db.models import Q

from tenancy.models import EndUser, Workspace


class ModelName(models.TextChoices):
    PATH_CLASSIFIER = "path_classifier", "path classifier"
    STUCK_DETECTOR = "stuck_detector", "stuck detector"
    NUDGE_RESPONSE = "nudge_response_predictor", "nudge response predictor"


class ModelVersion(models.Model):
    """One trained model: candidate -> shadow -> A/B -> active -> retired (ml/registry/services.py
    holds the transitions, each audited)."""

    class Status(models.TextChoices):
        CANDIDATE = "candidate"
        SHADOW = "shadow"
        AB = "ab", "A/B"
        ACTIVE = "active"
        RETIRED = "retired"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    name = models.CharField(max_length=40, choices=ModelName.choices)
    version = models.CharField(max_length=20, help_text="Semantic version, major.minor.patch.")
    major = models.PositiveIntegerField(default=1)
    minor = models.PositiveIntegerField(default=0)
    patch = models.PositiveIntegerField(default=0)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.CANDIDATE)
    artifact = models.CharField(max_length=255, help_text="Its file in the ml_artifacts storage.")
    artifact_sha256 = models.CharField(max_length=64)
    artifact_bytes = models.PositiveIntegerField(default=0)
    feature_schema_hash = models.CharField(max_length=64)
    features = models.JSONField(default=list, help_text="The model's input columns, in order.")
    training_window_start = models.DateTimeField()
    training_window_end = models.DateTimeField()
    training_rows = models.PositiveIntegerField(default=0)
    validation_rows = models.PositiveIntegerField(default=0)
    metrics = models.JSONField(default=dict, blank=True, help_text="AUC, log loss, calibration, policy.")
    params = models.JSONField(default=dict, blank=True, help_text="LightGBM parameters of the training.")
    trained_seconds = models.FloatField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    status_changed_at = models.DateTimeField(null=True, blank=True)
    activated_at = models.DateTimeField(null=True, blank=True)
    replaced = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The active version this one replaced (what a rollback returns to).",
    )

    class Meta:
        ordering = ["workspace", "name", "-major", "-minor", "-patch"]
        constraints = [
            models.UniqueConstraint(fields=["workspace", "name", "version"], name="modelversion_unique"),
            models.UniqueConstraint(
                fields=["workspace", "name"], condition=Q(status="active"), name="modelversion_one_active"
            ),
        ]
        indexes = [models.Index(fields=["workspace", "name", "status"], name="modelversion_status_idx")]

    def __str__(self) -> str:
        return f"{self.name} {self.version}"

    @property
    def label(self) -> str:
        """name@version, as a model experiment's arm names it."""
        return f"{self.name}@{self.version}"


class ModelAlert(models.Model):
    """Something about a model a person should look at: an artifact refused at load, drift, an
    accuracy drop that started a retraining."""

    class Kind(models.TextChoices):
        SCHEMA_MISMATCH = "schema_mismatch", "feature schema mismatch"
        LOAD_FAILED = "load_failed", "artifact failed to load"
        DRIFT = "drift", "feature drift"
        ACCURACY_DROP = "accuracy_drop", "accuracy drop"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.CASCADE, related_name="alerts"
    )
    kind = models.CharField(max_length=20, choices=Kind.choices)
    message = models.TextField()
    details = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["workspace", "-created_at"], name="modelalert_recent_idx")]

    def __str__(self) -> str:
        return f"{self.kind}: {self.message[:60]}"


class FeatureSnapshot(models.Model):
    """An end user's behavioural counters and derived features as PostgreSQL last computed them
    (ml/features/derived.py, daily; and whenever the store fell back to PostgreSQL)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    end_user = models.OneToOneField(EndUser, on_delete=models.CASCADE, related_name="+")
    event_count = models.PositiveIntegerField(default=0)
    session_count = models.PositiveIntegerField(default=0)
    session_seconds = models.FloatField(default=0)
    first_event_at = models.DateTimeField(null=True, blank=True)
    last_event_at = models.DateTimeField(null=True, blank=True)
    steps_completed = models.PositiveIntegerField(default=0)
    events_7d = models.PositiveIntegerField(default=0)
    active_days_7d = models.PositiveSmallIntegerField(default=0)
    engagement_score = models.FloatField(default=0, help_text="0-100, ml/features/compute.py.")
    computed_at = models.DateTimeField()

    class Meta:
        indexes = [models.Index(fields=["workspace", "computed_at"], name="featuresnapshot_computed_idx")]

    def __str__(self) -> str:
        return f"features of {self.end_user_id}"


class PathChoice(models.Model):
    """One planner decision as the ML layer saw it: who, which eligible paths, what was chosen by
    which policy and with what probability (propensity), the features it was taken on, and what the
    shadow models would have chosen. Training and the offline policy estimate read these rows."""

    class Policy(models.TextChoices):
        RULES = "rules"
        MODEL = "model"
        EXPLORE = "explore", "exploration"
        EXPERIMENT = "experiment", "model experiment"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    end_user = models.ForeignKey(EndUser, on_delete=models.CASCADE, related_name="+")
    enrollment = models.OneToOneField(
        "onboarding.Enrollment", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    decided_at = models.DateTimeField()
    policy = models.CharField(max_length=12, choices=Policy.choices)
    path_key = models.CharField(max_length=80, help_text="The chosen path's key.")
    rules_path_key = models.CharField(max_length=80, blank=True, help_text="What the rules chose.")
    eligible = models.JSONField(default=list, help_text="Keys of the eligible paths.")
    propensity = models.FloatField(help_text="Probability that the logging policy chose this path.")
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    scores = models.JSONField(default=dict, blank=True, help_text="{path key: predicted activation}.")
    explanation = models.JSONField(default=list, blank=True, help_text="[[feature=value, contribution]].")
    features = models.JSONField(default=dict, help_text="The raw features the decision was taken on.")
    feature_source = models.CharField(max_length=20, blank=True, help_text="redis, cache or postgres.")
    shadow = models.JSONField(default=list, blank=True, help_text="[{version, path_key, agrees}].")
    latency_ms = models.FloatField(default=0)
    reason = models.TextField(blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["workspace", "decided_at"], name="pathchoice_decided_idx"),
            models.Index(fields=["workspace", "end_user"], name="pathchoice_user_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.end_user_id}: {self.path_key} ({self.policy})"


class DriftReport(models.Model):
    """A weekly check of one model version: PSI per feature between its training data and the last
    week's decisions, and its accuracy on outcomes that matured since training."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="drift_reports")
    computed_at = models.DateTimeField()
    window_start = models.DateTimeField()
    window_end = models.DateTimeField()
    psi = models.JSONField(default=dict, help_text="{feature: PSI}.")
    max_psi = models.FloatField(default=0)
    auc_at_training = models.FloatField(null=True, blank=True)
    auc_now = models.FloatField(null=True, blank=True)
    matured_rows = models.PositiveIntegerField(default=0)
    accuracy_drop = models.FloatField(null=True, blank=True, help_text="Relative AUC drop, 0.07 = 7%.")
    retraining_started = models.BooleanField(default=False)

    class Meta:
        ordering = ["-computed_at"]

    def __str__(self) -> str:
        return f"drift of {self.model_version_id} at {self.computed_at:%Y-%m-%d}"
