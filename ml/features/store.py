"""The feature store's read: an end user's raw features now, and where they came from.

PostgreSQL is the source of truth (ml/features/history.py). The real-time Redis counters and the
5-minute process cache in front of it are ml/features/realtime.py's (issue 16).
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from ml.features import history
from tenancy.models import EndUser

POSTGRES = "postgres"


@dataclass(frozen=True, slots=True)
class FeatureRead:
    rows: dict[int, dict]  # end user id -> raw user features (ml/features/schema.USER_FEATURES)
    source: str  # "redis", "cache" or "postgres"
    age_seconds: float = 0.0  # how old the cached features were (source "cache")

    def describe(self) -> str:
        if self.source == "cache":
            return f"features from the cache, {self.age_seconds:.0f} s old (Redis unavailable)"
        return f"features from {self.source}"


def features_for(*, workspace_id: int, end_users: Sequence[EndUser], now: datetime) -> FeatureRead:
    """Raw features of these people at `now`."""
    return FeatureRead(history.features_now(workspace_id, end_users, now), POSTGRES)
