"""Log-spaced time buckets: a distribution kept as counts, from which the median and p90 are read
without raw rows.

Bucket i holds durations d (seconds, at least 1) with 2^(i/8) <= d < 2^((i+1)/8): eight buckets
per doubling. A quantile is reported as the geometric middle of the bucket its rank falls in, so
it is within 4.5% (2^(1/16) - 1) of the true value; durations under one second count as one
second. `bucket_of` is the one computation of a bucket: the enrollment facts (facts.py) store it.
"""

import math
from collections.abc import Iterable, Mapping

BUCKETS_PER_DOUBLING = 8


def bucket_of(seconds: float) -> int:
    """The bucket of a duration in seconds."""
    return math.floor(BUCKETS_PER_DOUBLING * math.log2(max(seconds, 1.0)))


def bucket_middle_seconds(bucket: int) -> float:
    return 2 ** ((bucket + 0.5) / BUCKETS_PER_DOUBLING)


def quantile_seconds(counts: Mapping[int, int], quantile: float) -> float | None:
    """The duration at `quantile` (0..1) of the distribution {bucket: count}; None when empty.

    The rank is the nearest-rank one (ceil(q x n)), as for a sorted list of the raw durations."""
    total = sum(counts.values())
    if total == 0:
        return None
    rank = max(1, math.ceil(quantile * total))
    seen = 0
    for bucket in sorted(counts):
        seen += counts[bucket]
        if seen >= rank:
            return bucket_middle_seconds(bucket)
    return bucket_middle_seconds(max(counts))


def merged(rows: Iterable[tuple[int, int]]) -> dict[int, int]:
    """{bucket: count} summed from (bucket, count) rows."""
    counts: dict[int, int] = {}
    for bucket, count in rows:
        counts[bucket] = counts.get(bucket, 0) + count
    return counts
