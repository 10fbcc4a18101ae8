"""ML fixtures: tiny trained versions (a LightGBM booster on a few hundred rows built with the
feature schema, registered through the registry's own service) and a workspace to put them in."""

import contextlib
from datetime import timedelta

import lightgbm
import numpy as np
import pytest
import redis
from django.conf import settings
from django.utils import timezone

from analytics.rollups import services as rollup_services
from experiments.models import Assignment, Experiment
from ml.features import realtime, schema
from ml.models import ModelName, ModelVersion
from ml.registry import services as registry_services
from ml.serving import loaded
from onboarding.models import Enrollment
from tenancy.models import EndUser
from tests.factories import PathFactory, PublishedPathVersionFactory, WorkspaceFactory

TINY_PARAMS = {
    "objective": "binary",
    "num_threads": 1,
    "num_leaves": 4,
    "min_data_in_leaf": 10,
    "learning_rate": 0.3,
    "verbose": -1,
    "seed": 7,
}


# The shape ml/training/evaluation.py gives a version's metrics.
TINY_METRICS = {
    "auc": 0.71,
    "log_loss": 0.62,
    "calibration": {
        "ece": 0.021,
        "bins": [
            {"lower": 0.2, "upper": 0.3, "count": 60, "mean_predicted": 0.3, "observed_rate": 0.28},
            {"lower": 0.3, "upper": 0.4, "count": 0, "mean_predicted": None, "observed_rate": None},
        ],
    },
    "policy": {
        "rules": {"activation": 0.31, "ci95": [0.29, 0.33], "matched_rows": 900, "effective_rows": 880.0},
        "model": {
            "activation": 0.36,
            "ci95": [0.33, 0.39],
            "difference": 0.05,
            "difference_ci95": [0.02, 0.08],
            "matched_rows": 410,
            "effective_rows": 395.2,
        },
    },
}


def tiny_rows(model_name: str, count: int = 300, seed: int = 0) -> tuple[list[dict], np.ndarray]:
    """Raw feature rows and labels: developers and high engagement convert more often."""
    generator = np.random.default_rng(seed)
    personas = ["developer", "analyst", "marketer"]
    rows, labels = [], []
    for _ in range(count):
        row = {
            "persona": personas[int(generator.integers(3))],
            "company_size": ["1-10", "11-50", "51-200"][int(generator.integers(3))],
            "engagement_score": float(generator.uniform(0, 100)),
            "hours_since_signup": float(generator.uniform(0, 72)),
            "session_count": int(generator.integers(0, 8)),
            "path": ["get-started", "developer"][int(generator.integers(2))],
            "step": "connect",
            "channel": "email",
            "local_hour": int(generator.integers(24)),
        }
        chance = 0.2 + 0.4 * (row["persona"] == "developer") + 0.3 * row["engagement_score"] / 100
        rows.append(row)
        labels.append(float(generator.uniform() < chance))
    return rows, np.array(labels)


def tiny_booster(model_name: str, *, rows: int = 300, seed: int = 0) -> tuple[lightgbm.Booster, dict]:
    """(booster, vocabulary) of a few rounds on tiny_rows, one thread."""
    features, labels = tiny_rows(model_name, rows, seed)
    vocabulary = schema.vocabularies(model_name, features)
    data = lightgbm.Dataset(
        schema.encode(model_name, features, vocabulary),
        label=labels,
        feature_name=[each.name for each in schema.columns(model_name)],
        categorical_feature=schema.categorical_indices(model_name),
        free_raw_data=False,
    )
    return lightgbm.train(TINY_PARAMS, data, num_boost_round=5), vocabulary


def register_tiny(
    workspace,
    name: str = ModelName.PATH_CLASSIFIER,
    *,
    metrics: dict | None = None,
    seed: int = 0,
    actor=None,
) -> ModelVersion:
    """A trained version of `name` registered as a candidate (1.0.0, then 1.1.0, ...)."""
    booster, vocabulary = tiny_booster(name, seed=seed)
    end = timezone.now()
    return registry_services.version_register(
        workspace=workspace,
        name=name,
        booster=booster,
        vocabulary=vocabulary,
        metrics=metrics if metrics is not None else TINY_METRICS,
        params=TINY_PARAMS,
        window_start=end - timedelta(days=30),
        window_end=end,
        training_rows=240,
        validation_rows=60,
        trained_seconds=0.05,
        actor=actor,
    )


@pytest.fixture
def ml_workspace(db):
    return WorkspaceFactory(name="Acme")


@pytest.fixture
def trained(ml_workspace):
    """register_tiny bound to the ml_workspace: trained(), trained(name=..., metrics=...)."""

    def make(name: str = ModelName.PATH_CLASSIFIER, **options) -> ModelVersion:
        return register_tiny(ml_workspace, name, **options)

    return make


# --- Versions trained on given rows, made active (drift, the stuck and send-time providers) ------

FITTED_PARAMS = {**TINY_PARAMS, "min_data_in_leaf": 5, "min_data_per_group": 5, "cat_smooth": 1, "cat_l2": 1}


def fitted_booster(model_name: str, rows: list[dict], labels) -> tuple[lightgbm.Booster, dict]:
    """(booster, vocabulary) fitted on these raw rows and labels, 30 rounds, one thread."""
    vocabulary = schema.vocabularies(model_name, rows)
    data = lightgbm.Dataset(
        schema.encode(model_name, rows, vocabulary),
        label=np.asarray(labels, dtype=float),
        feature_name=[each.name for each in schema.columns(model_name)],
        categorical_feature=schema.categorical_indices(model_name),
        free_raw_data=False,
    )
    return lightgbm.train(FITTED_PARAMS, data, num_boost_round=30), vocabulary


def register_active(
    workspace,
    name: str,
    rows: list[dict],
    labels,
    *,
    metrics: dict | None = None,
    window_start=None,
    window_end=None,
) -> ModelVersion:
    """A version of `name` fitted on `rows`, registered through the registry and set active in the
    database (as a promotion leaves it); the process's serving cache is dropped."""
    booster, vocabulary = fitted_booster(name, rows, labels)
    end = window_end or timezone.now()
    version = registry_services.version_register(
        workspace=workspace,
        name=name,
        booster=booster,
        vocabulary=vocabulary,
        metrics=metrics if metrics is not None else {"auc": 0.8},
        params=FITTED_PARAMS,
        window_start=window_start or end - timedelta(days=30),
        window_end=end,
        training_rows=len(rows),
        validation_rows=0,
        trained_seconds=0.01,
    )
    ModelVersion.objects.filter(pk=version.pk).update(status=ModelVersion.Status.ACTIVE)
    version.refresh_from_db()
    loaded.forget()
    return version


@pytest.fixture
def fresh_serving():
    """No booster or serving lookup kept from another test, before or after."""
    loaded.forget()
    yield
    loaded.forget()


def assign_model_arms(
    experiment: Experiment, arms: dict[str, tuple[int, int]], *, days_ago: float = 20
) -> None:
    """{arm key: (users, activated)} assigned to a model experiment `days_ago`, enrolled on one path
    (the first `activated` complete it 5 hours later), then analytics' facts rebuilt: the results
    read them as the dashboards do."""
    workspace = experiment.workspace
    version = PublishedPathVersionFactory(path=PathFactory(workspace=workspace))
    enrolled_at = timezone.now() - timedelta(days=days_ago)
    for key, (users, activated) in arms.items():
        variant = experiment.variants.get(key=key)
        people = EndUser.objects.bulk_create(
            [
                EndUser(workspace=workspace, external_id=f"{experiment.key}-{key}-{index}")
                for index in range(users)
            ]
        )
        enrollments = Enrollment.objects.bulk_create(
            [
                Enrollment(
                    workspace=workspace,
                    end_user=person,
                    path_version=version,
                    status=Enrollment.Status.COMPLETED if index < activated else Enrollment.Status.ACTIVE,
                    enrolled_at=enrolled_at,
                    step_entered_at=enrolled_at,
                    completed_at=enrolled_at + timedelta(hours=5) if index < activated else None,
                )
                for index, person in enumerate(people)
            ]
        )
        Assignment.objects.bulk_create(
            [
                Assignment(
                    workspace=workspace,
                    experiment=experiment,
                    end_user=enrollment.end_user,
                    variant=variant,
                    enrollment=enrollment,
                    assigned_at=enrolled_at,
                    hash_value=0.5,
                )
                for enrollment in enrollments
            ]
        )
    rollup_services.rollups_rebuild(workspace=workspace)


# --- A path classifier with a known preference (serving) ------------------------------------------


def preferring_rows(
    *, persona: str, preferred: str, other: str, count: int = 400, seed: int = 3
) -> tuple[list[dict], list[float]]:
    """Rows where `persona` activates far more often on `preferred` and everyone else on `other`."""
    generator = np.random.default_rng(seed)
    personas = [persona, "marketer", "analyst"]
    rows, labels = [], []
    for index in range(count):
        row = {
            "persona": personas[index % 3],
            "company_size": ["1-10", "51-200"][int(generator.integers(2))],
            "engagement_score": float(generator.uniform(0, 100)),
            "hours_since_signup": float(generator.uniform(0, 2)),
            "path": [preferred, other][(index // 3) % 2],
        }
        fits = (row["persona"] == persona) == (row["path"] == preferred)
        rows.append(row)
        labels.append(float(generator.uniform() < (0.85 if fits else 0.1)))
    return rows, labels


def feature_source() -> str:
    """Where the store reads a new person's features here: Redis when configured, else PostgreSQL."""
    return "redis" if settings.REDIS_URL and settings.ML_FEATURE_STORE_REALTIME else "postgres"


def register_preferring(
    workspace,
    *,
    persona: str = "developer",
    preferred: str = "developer",
    other: str = "get-started",
    status: str = ModelVersion.Status.ACTIVE,
) -> ModelVersion:
    """A path classifier that clearly prefers `preferred` for `persona` and `other` for the rest,
    registered and put in `status` in the database; the serving cache is dropped."""
    rows, labels = preferring_rows(persona=persona, preferred=preferred, other=other)
    booster, vocabulary = fitted_booster(ModelName.PATH_CLASSIFIER, rows, labels)
    end = timezone.now()
    version = registry_services.version_register(
        workspace=workspace,
        name=ModelName.PATH_CLASSIFIER,
        booster=booster,
        vocabulary=vocabulary,
        metrics={"auc": 0.9},
        params=FITTED_PARAMS,
        window_start=end - timedelta(days=30),
        window_end=end,
        training_rows=len(rows),
        validation_rows=0,
        trained_seconds=0.01,
    )
    ModelVersion.objects.filter(pk=version.pk).update(status=status)
    version.refresh_from_db()
    loaded.forget()
    return version


@pytest.fixture(autouse=True)
def _feature_store_born_before_the_test():
    """A deployment's feature store was born long before its users (ml/features/realtime.SINCE_KEY):
    so is this test's, unless the test empties Redis itself. Nothing to do without Redis."""
    connection = realtime.client()
    if connection is None:
        return
    born = timezone.now() - timedelta(hours=1)
    with contextlib.suppress(redis.RedisError):  # Redis absent: tests that need it skip or fail themselves
        connection.set(realtime.SINCE_KEY, realtime.micros(born), nx=True)
