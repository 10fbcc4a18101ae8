"""Experiment fixtures: a path with a live version (v2) and the version it replaced (v1, archived
after being published), the two arms of a path experiment."""

import pytest
from django.utils import timezone

from experiments import services
from tests.factories import PathFactory, PathVersionFactory, PublishedPathVersionFactory, WorkspaceFactory


@pytest.fixture
def workspace():
    return WorkspaceFactory()


@pytest.fixture
def path(workspace):
    return PathFactory(workspace=workspace, key="onboarding", is_default=True)


@pytest.fixture
def old_version(path):
    return PathVersionFactory(path=path, number=1, status="archived", published_at=timezone.now())


@pytest.fixture
def live_version(path, old_version):
    return PublishedPathVersionFactory(path=path, number=2)


@pytest.fixture
def make_experiment(path, old_version, live_version):
    def make(*, start=True, **options):
        options.setdefault("key", "onboarding-v2")
        experiment = services.create_path_experiment(
            path=path, versions=[old_version, live_version], **options
        )
        if start:
            experiment = services.experiment_start(experiment=experiment)
        return experiment

    return make
