"""Per-process caches of the nudges app start empty in every test (ids repeat across tests)."""

import pytest

from nudges.delivery import pipeline
from nudges.triggers import receivers as hooks


@pytest.fixture(autouse=True)
def _fresh_nudge_caches():
    hooks.forget()
    pipeline.forget()
    yield
    hooks.forget()
    pipeline.forget()
