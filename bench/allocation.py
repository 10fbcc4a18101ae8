"""Allocation benchmark: the time of one experiment allocation in-process (issue 15: p95 < 1 ms).

    .venv/bin/python bench/allocation.py [--users 100000] [--arms 2] [--traffic 1.0]

Times `experiments.allocation.allocate` (GrowthBook v2 hash of (seed, external id), bucket ranges
from percent weights, choice of the arm) for --users distinct external ids, one call at a time
with perf_counter_ns, and prints p50/p95/p99/max in microseconds, plus the split it produced.
Pure Python: no database, no Django set-up. The planner's reads (running experiments, stored
assignments) are per batch and are not part of it.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from experiments import allocation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--arms", type=int, default=2)
    parser.add_argument("--traffic", type=float, default=1.0)
    options = parser.parse_args()
    weights = [
        100 // options.arms + (1 if index < 100 % options.arms else 0) for index in range(options.arms)
    ]
    timings, counts = [], [0] * (options.arms + 1)
    for number in range(options.users):
        user_value = f"user-{number:08d}@bench"
        started = time.perf_counter_ns()
        result = allocation.allocate(
            seed="onboarding-v2",
            user_value=user_value,
            weights_percent=weights,
            traffic_share=options.traffic,
        )
        timings.append(time.perf_counter_ns() - started)
        counts[result.index] += 1
    timings.sort()

    def quantile(share: float) -> float:
        return timings[min(len(timings) - 1, int(share * len(timings)))] / 1000

    print(f"allocation of {options.users:,} users, weights {weights}, traffic {options.traffic}")
    print(
        f"  p50 {quantile(0.50):.1f} us  p95 {quantile(0.95):.1f} us  p99 {quantile(0.99):.1f} us  "
        f"max {timings[-1] / 1000:.1f} us  mean {statistics.fmean(timings) / 1000:.1f} us"
    )
    shares = ", ".join(f"{count / options.users:.4f}" for count in counts[:-1])
    print(f"  arm shares {shares}; outside the coverage {counts[-1] / options.users:.4f}")


if __name__ == "__main__":
    main()
