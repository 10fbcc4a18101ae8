"""Analytics state: rollups of enrollments and step progress, their refresh cursors, and the
per-workspace activation window.

Rollup rows are keyed by the day the enrollment was enrolled (UTC), because every enrollment
metric is defined over "enrollments enrolled in range". Unknown segment values are stored as ''.
Time distributions are counts per log-spaced bucket (analytics/rollups/buckets.py), which give
the median and p90 without raw rows.
"""

from django.db import models

from tenancy.models import Workspace

SEGMENT_FIELDS = ("persona", "signup_source", "company_size", "use_case")


class _Segmented(models.Model):
    # No single-column indexes on the foreign keys: the (workspace, day) index and the unique key
    # (path version first) serve their lookups, and each index is one more write per changed row.
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    day = models.DateField(help_text="The UTC day the enrollments were enrolled.")
    path_version = models.ForeignKey(
        "paths.PathVersion", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    persona = models.CharField(max_length=100, blank=True)
    signup_source = models.CharField(max_length=100, blank=True)
    company_size = models.CharField(max_length=100, blank=True)
    use_case = models.CharField(max_length=100, blank=True)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.path_version_id} {self.day}"


class EnrollmentRollup(_Segmented):
    """Per day x path version x segment: enrolled, started (a step advanced past), completed the
    path, and activated (completed within the workspace's window, counted with
    `activation_window_days`)."""

    enrolled = models.PositiveIntegerField(default=0)
    started = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)
    activated = models.PositiveIntegerField(default=0)
    activation_window_days = models.PositiveSmallIntegerField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["path_version", "day", *SEGMENT_FIELDS], name="enrollmentrollup_unique"
            )
        ]
        indexes = [models.Index(fields=["workspace", "day"], name="enrollmentrollup_day_idx")]


class ActivationTimeBucket(_Segmented):
    """How many activated enrollments took a time-to-activation in log bucket `bucket`."""

    bucket = models.SmallIntegerField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["path_version", "day", *SEGMENT_FIELDS, "bucket"], name="activationtimebucket_unique"
            )
        ]
        indexes = [models.Index(fields=["workspace", "day"], name="activationbucket_day_idx")]


class StepRollup(_Segmented):
    """Per day x path version x step x segment: enrollments that entered the step, advanced past
    it (skip included) and completed it (not skipped), the last two among those that entered."""

    step_key = models.CharField(max_length=80)
    entered = models.PositiveIntegerField(default=0)
    advanced = models.PositiveIntegerField(default=0)
    completed = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["path_version", "day", "step_key", *SEGMENT_FIELDS], name="steprollup_unique"
            )
        ]
        indexes = [models.Index(fields=["workspace", "day"], name="steprollup_day_idx")]


class StepTimeBucket(_Segmented):
    """How many completions of the step took a time-to-complete in log bucket `bucket` (from
    entering the step: enrolment for the first step, else the previous step's completion)."""

    step_key = models.CharField(max_length=80)
    bucket = models.SmallIntegerField()
    count = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["path_version", "day", "step_key", *SEGMENT_FIELDS, "bucket"],
                name="steptimebucket_unique",
            )
        ]
        indexes = [models.Index(fields=["workspace", "day"], name="steptimebucket_day_idx")]


class EnrollmentFact(models.Model):
    """What one enrollment contributes to the rollups (analytics/rollups/facts.py computes it): the
    refresh subtracts an enrollment's stored fact and adds its new one, so its cost follows the
    enrollments that changed. `enrollment_id` is no foreign key: the fact of a deleted enrollment
    stays until a refresh finds it and subtracts it."""

    enrollment_id = models.BigIntegerField(primary_key=True)
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    path_version = models.ForeignKey(
        "paths.PathVersion", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    day = models.DateField(help_text="The UTC day the enrollment was enrolled.")
    persona = models.CharField(max_length=100, blank=True)
    signup_source = models.CharField(max_length=100, blank=True)
    company_size = models.CharField(max_length=100, blank=True)
    use_case = models.CharField(max_length=100, blank=True)
    started = models.BooleanField(help_text="A step of the version advanced past (not reverted).")
    completed = models.BooleanField()
    completed_day = models.DateField(null=True, blank=True, help_text="UTC day of completion, if completed.")
    activated = models.BooleanField(help_text="Completed within the workspace's activation window.")
    activation_bucket = models.SmallIntegerField(null=True, blank=True, help_text="Log bucket, if activated.")

    class Meta:
        indexes = [models.Index(fields=["workspace", "day"], name="enrollmentfact_day_idx")]

    def __str__(self) -> str:
        return f"fact of enrollment {self.enrollment_id}"


class StepFact(models.Model):
    """One step an enrollment entered (the step before it advanced past, or the first step):
    whether it advanced past it, completed it (not skipped) and the time it took (log bucket)."""

    enrollment_id = models.BigIntegerField()
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    path_version = models.ForeignKey(
        "paths.PathVersion", on_delete=models.CASCADE, related_name="+", db_index=False
    )
    day = models.DateField(help_text="The UTC day the enrollment was enrolled.")
    persona = models.CharField(max_length=100, blank=True)
    signup_source = models.CharField(max_length=100, blank=True)
    company_size = models.CharField(max_length=100, blank=True)
    use_case = models.CharField(max_length=100, blank=True)
    step_key = models.CharField(max_length=80)
    advanced = models.BooleanField()
    completed = models.BooleanField()
    bucket = models.SmallIntegerField(null=True, blank=True, help_text="Time to complete, if completed.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["enrollment_id", "step_key"], name="stepfact_unique")]
        indexes = [models.Index(fields=["workspace", "day"], name="stepfact_day_idx")]

    def __str__(self) -> str:
        return f"fact of enrollment {self.enrollment_id} step {self.step_key}"


class RollupCursor(models.Model):
    """How far the incremental refresh has read a workspace's changes; advanced only after the
    rows of a chunk are committed, so an interrupted refresh resumes where it stopped."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="+")
    changes_seen_until = models.DateTimeField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"rollups of {self.workspace_id} until {self.changes_seen_until}"


class AnalyticsSettings(models.Model):
    """A workspace's analytics settings; a workspace without a row has the defaults."""

    DEFAULT_ACTIVATION_WINDOW_DAYS = 14

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="+")
    activation_window_days = models.PositiveSmallIntegerField(
        default=DEFAULT_ACTIVATION_WINDOW_DAYS,
        help_text="N: an enrollment is activated when its path is completed within N days.",
    )

    class Meta:
        verbose_name_plural = "analytics settings"

    def __str__(self) -> str:
        return f"analytics settings of {self.workspace_id}"


class Alert(models.Model):
    """An anomaly found by analytics/alerts/detection.py: one day of a path version's metric (per
    step for drop-off) far from its trailing baseline in the bad direction. One row per (workspace,
    path version, metric, step, day), so detection run again raises and notifies nothing new."""

    class Metric(models.TextChoices):
        DROP_OFF_RATE_BY_STEP = "drop_off_rate_by_step", "drop-off by step"
        ACTIVATION_RATE = "activation_rate", "activation rate"

    class Status(models.TextChoices):
        OPEN = "open"
        ACKNOWLEDGED = "acknowledged"
        RESOLVED = "resolved"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    path_version = models.ForeignKey("paths.PathVersion", on_delete=models.CASCADE, related_name="+")
    metric = models.CharField(max_length=40, choices=Metric.choices)
    step_key = models.CharField(max_length=80, blank=True, help_text="'' for activation_rate.")
    day = models.DateField(help_text="The UTC enrolment day judged.")
    value = models.FloatField()
    numerator = models.PositiveIntegerField()
    denominator = models.PositiveIntegerField()
    baseline_median = models.FloatField()
    baseline_mad = models.FloatField(help_text="Median absolute deviation of the baseline days (unscaled).")
    baseline_days = models.PositiveSmallIntegerField(help_text="Days of the trailing window that counted.")
    score = models.FloatField(help_text="(value - median) / max(1.4826 x MAD, floor).")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.OPEN)
    created_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    resolved_at = models.DateTimeField(null=True, blank=True)
    notifications = models.JSONField(
        default=dict, blank=True, help_text="Per channel (email, webhook): outcome, detail, when."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "path_version", "metric", "step_key", "day"], name="alert_unique"
            )
        ]
        indexes = [models.Index(fields=["workspace", "status", "-created_at"], name="alert_status_idx")]

    def __str__(self) -> str:
        step = f" step {self.step_key}" if self.step_key else ""
        return f"{self.metric}{step} of version {self.path_version_id} on {self.day}"


# --- Event rollups (analytics/events/rollups.py): cohorts and event volumes without raw scans ----


class _CohortColumns(models.Model):
    """A person's cohort keys and segment, as of the last refresh that saw them change: the signup
    day (EndUser.created_at, UTC) and the day of their first enrolment in the workspace, each with
    its week number (analytics.events.raw.week_number: Monday-to-Sunday UTC weeks since 1970)."""

    # No index on the workspace: the rows are read by person or whole (a workspace is nearly the
    # table), and each new week would write one more index entry (6M rows at 1M users).
    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+", db_index=False)
    signup_day = models.DateField()
    signup_week = models.IntegerField()
    first_enrolled_day = models.DateField(null=True, blank=True)
    first_enrolled_week = models.IntegerField(null=True, blank=True)
    persona = models.CharField(max_length=100, blank=True)
    signup_source = models.CharField(max_length=100, blank=True)
    company_size = models.CharField(max_length=100, blank=True)
    use_case = models.CharField(max_length=100, blank=True)

    class Meta:
        abstract = True


class CohortMember(_CohortColumns):
    """One row per end user. `end_user_id` is no foreign key: the row of a profile deleted (merged
    into another) stays until a refresh finds it and subtracts it from CohortCount."""

    end_user_id = models.BigIntegerField(unique=True)

    def __str__(self) -> str:
        return f"cohort member {self.end_user_id}"


class ActivityWeek(_CohortColumns):
    """One row per end user and week in which they had any event (by event timestamp), with
    CohortMember's columns copied; `counted` once its CohortCount contributions are added."""

    end_user_id = models.BigIntegerField()
    week = models.IntegerField()
    counted = models.BooleanField(default=False)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["end_user_id", "week"], name="activityweek_unique")]
        indexes = [
            models.Index(
                fields=["workspace"], condition=models.Q(counted=False), name="activityweek_uncounted_idx"
            )
        ]

    def __str__(self) -> str:
        return f"{self.end_user_id} active in week {self.week}"


class CohortCount(models.Model):
    """The cohort matrices: per cohort kind (S signup, E first enrolment), cohort day, segment and
    weeks since the cohort's week, how many of its people were active that week; `since` -1 holds
    the cohort's size. Kept by adding the differences of CohortMember and ActivityWeek."""

    SIZE = -1

    class Kind(models.TextChoices):
        SIGNUP = "S", "signup"
        ENROLLMENT = "E", "first enrolment"

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    kind = models.CharField(max_length=1, choices=Kind.choices)
    cohort_day = models.DateField()
    cohort_week = models.IntegerField()
    since = models.IntegerField()
    persona = models.CharField(max_length=100, blank=True)
    signup_source = models.CharField(max_length=100, blank=True)
    company_size = models.CharField(max_length=100, blank=True)
    use_case = models.CharField(max_length=100, blank=True)
    users = models.BigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workspace", "kind", "cohort_day", "since", *SEGMENT_FIELDS],
                name="cohortcount_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.kind} cohort of {self.cohort_day}, week {self.since}: {self.users}"


class EventDayRollup(models.Model):
    """How many events of one name a workspace stored per UTC day (of the event's timestamp)."""

    workspace = models.ForeignKey(Workspace, on_delete=models.CASCADE, related_name="+")
    day = models.DateField()
    event_name = models.CharField(max_length=255)
    events = models.PositiveBigIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["workspace", "day", "event_name"], name="eventdayrollup_unique")
        ]

    def __str__(self) -> str:
        return f"{self.event_name} on {self.day}: {self.events}"


class EventRollupCursor(models.Model):
    """Events received (and people changed) before `seen_until` are in the event rollups; it moves
    in the transaction that writes a window's rows, so each event is counted exactly once."""

    workspace = models.OneToOneField(Workspace, on_delete=models.CASCADE, related_name="+")
    seen_until = models.DateTimeField(null=True, blank=True)
    refreshed_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"event rollups of {self.workspace_id} until {self.seen_until}"
