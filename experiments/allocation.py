"""Deterministic allocation, the same as GrowthBook's SDKs so a client app computes the same arm.

Pure functions, no database. The spec (growthbook-python, growthbook/core.py; the JS SDK's util.ts):

* fnv1a32: FNV-1a, 32 bits, over the string's characters (Python `ord`, i.e. code points).
* hash v2: fnv1a32(str(fnv1a32(seed + value))) % 10000 / 10000, a number in [0, 1).
* bucket ranges: weights (fractions summing to 1, else equal weights) laid end to end; each arm
  takes the first `coverage * weight` of its slice. coverage is the traffic share.
* choose: the arm whose range holds the hash, else -1 (outside the coverage).

Here the hash value is the end user's external id, the seed is the experiment's seed (its key by
default), and weights are percents divided by 100. docs/experiments.md says how a GrowthBook SDK
is configured to agree.
"""

from collections.abc import Sequence
from dataclasses import dataclass

FNV_OFFSET = 0x811C9DC5
FNV_PRIME = 0x01000193
UINT32 = 2**32


def fnv1a32(text: str) -> int:
    value = FNV_OFFSET
    for character in text:
        value = ((value ^ ord(character)) * FNV_PRIME) % UINT32
    return value


def gb_hash(seed: str, value: str, version: int = 2) -> float | None:
    """GrowthBook's hash in [0, 1): version 2 (the one used here) or the legacy version 1."""
    if version == 2:
        return (fnv1a32(str(fnv1a32(seed + value))) % 10000) / 10000
    if version == 1:
        return (fnv1a32(value + seed) % 1000) / 1000
    return None


def equal_weights(count: int) -> list[float]:
    return [1 / count for _ in range(count)] if count >= 1 else []


def bucket_ranges(
    count: int, coverage: float = 1.0, weights: Sequence[float] | None = None
) -> list[tuple[float, float]]:
    """GrowthBook's getBucketRanges: weights that are missing, of the wrong length or not summing
    to 1 (within 0.01) fall back to equal weights; coverage is clamped to [0, 1]."""
    coverage = min(max(coverage, 0.0), 1.0)
    chosen = list(weights) if weights is not None else equal_weights(count)
    if len(chosen) != count or not 0.99 <= sum(chosen) <= 1.01:
        chosen = equal_weights(count)
    ranges, cumulative = [], 0.0
    for weight in chosen:
        start = cumulative
        cumulative += weight
        ranges.append((start, start + coverage * weight))
    return ranges


def choose_variation(number: float, ranges: Sequence[tuple[float, float]]) -> int:
    """Index of the range holding the number (start inclusive, end exclusive), else -1."""
    for index, (start, end) in enumerate(ranges):
        if start <= number < end:
            return index
    return -1


@dataclass(frozen=True, slots=True)
class Allocation:
    index: int  # the arm's position, -1 when the user is outside the traffic coverage
    hash_value: float


class AllocationError(ValueError):
    """The experiment cannot allocate (no arms, no hash value): the caller gives control."""


def allocate(
    *, seed: str, user_value: str, weights_percent: Sequence[int], traffic_share: float
) -> Allocation:
    """The arm of one user: hash (seed, user value) with v2, over ranges from percent weights."""
    if not weights_percent:
        raise AllocationError("the experiment has no variants")
    if not user_value:
        raise AllocationError("the user has no external id to hash")
    if sum(weights_percent) != 100:
        raise AllocationError(f"variant weights sum to {sum(weights_percent)}, not 100")
    number = gb_hash(seed, user_value, 2)
    ranges = bucket_ranges(len(weights_percent), traffic_share, [weight / 100 for weight in weights_percent])
    return Allocation(choose_variation(number, ranges), number)
