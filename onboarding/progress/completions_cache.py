"""Each enrollment's step completions at a revision, kept in the cache by the writer that saved
them, so the progress API, the websocket and the next write skip reading and converting them.

A revision names one set of completions (every write that changes them takes a new revision), so
an entry is never stale. Entries are written only by writers, after their commit, never from a
read: a reader's enrollment and completions queries can straddle another writer's commit. The key
also holds the enrollment's enrolment time, so an id reused after a database reset (test
databases roll back) never meets an old entry.

With the cache unavailable (Redis down), reads fall back to PostgreSQL; after a failure the cache
is not asked again for BREAKER_SECONDS, so an outage costs no request a timeout.
"""

import logging
import time
from collections.abc import Iterable

from django.core.cache import cache

from core.on_commit import on_commit_batched
from onboarding.models import Enrollment
from onboarding.progress.state import CompletionState

logger = logging.getLogger(__name__)

TIMEOUT_SECONDS = 3600
BREAKER_SECONDS = 5.0
_skip_until = 0.0

Completions = dict[str, CompletionState]


def _key(enrollment_id: int, revision: int, enrolled_at) -> str:
    return f"onboarding:completions:{enrollment_id}:{revision}:{enrolled_at.timestamp()}"


def _available() -> bool:
    return time.monotonic() >= _skip_until


def _failed(operation: str) -> None:
    global _skip_until
    _skip_until = time.monotonic() + BREAKER_SECONDS
    logger.warning("progress.completions_cache_unavailable", extra={"operation": operation}, exc_info=True)


def completions_cached(enrollments: Iterable[Enrollment]) -> dict[int, Completions]:
    """The cached completions of those enrollments (at the revision each has), by id; the
    ones not cached are missing from the result."""
    keys = {_key(row.pk, row.revision, row.enrolled_at): row.pk for row in enrollments}
    if not keys or not _available():
        return {}
    try:
        found = cache.get_many(list(keys))
    except Exception:
        _failed("get")
        return {}
    return {keys[key]: completions for key, completions in found.items()}


def completions_remember(*, enrollment: Enrollment, completions: Completions) -> None:
    """After the current transaction commits, cache the completions saved at the enrollment's
    (new) revision; a transaction's entries are written in one round trip."""
    key = _key(enrollment.pk, enrollment.revision, enrollment.enrolled_at)
    on_commit_batched("progress.completions", _remember_all, (key, dict(completions)))


def _remember_all(entries: list[tuple[str, Completions]]) -> None:
    if not _available():
        return
    try:
        cache.set_many(dict(entries), TIMEOUT_SECONDS)
    except Exception:
        _failed("set")
