"""Vectorised `stats.compare` vs a per-comparison loop over gbstats, side by side.

    python perf/bench/stats_throughput.py [--comparisons 100000] [--gbstats-subset 2000]

Runs N two-arm mean comparisons (fixed-horizon Welch t and sequential CS) in one
vectorised call each, loops gbstats over the first `--gbstats-subset` of them (its rate is
extrapolated), prints both throughputs, their ratio, and the largest absolute difference
between the two engines' effect, CI bounds and p-values on the common subset.
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
from _floors import Floor, finish
from gbstats.frequentist.tests import (
    FrequentistConfig,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)
from gbstats.models.statistics import SampleMeanStatistic

from tritonab.splitter import stats

TUNING = 5000.0


def _arms(count: int, seed: int) -> tuple[stats.SampleMean, stats.SampleMean]:
    """Random but valid per-arm sufficient statistics."""
    rng = np.random.default_rng(seed)
    n = rng.integers(100, 5000, (2, count)).astype(np.float64)
    means = rng.normal(10.0, 0.3, (2, count))
    var = rng.uniform(1.0, 9.0, (2, count))
    s = means * n
    ss = var * (n - 1) + s**2 / n
    return stats.SampleMean(n[0], s[0], ss[0]), stats.SampleMean(n[1], s[1], ss[1])


def _ours(a, b, sequential: bool) -> tuple[float, stats.ComparisonResult]:
    start = time.perf_counter()
    res = stats.compare(a, b, relative=True, sequential_tuning=TUNING if sequential else None)
    return time.perf_counter() - start, res


def _gbstats(a, b, subset: int, sequential: bool) -> tuple[float, np.ndarray]:
    out = np.empty((subset, 4))
    start = time.perf_counter()
    for i in range(subset):
        sa = SampleMeanStatistic(n=int(a.n[i]), sum=a.sum[i], sum_squares=a.sum_squares[i])
        sb = SampleMeanStatistic(n=int(b.n[i]), sum=b.sum[i], sum_squares=b.sum_squares[i])
        if sequential:
            test = SequentialTwoSidedTTest(
                sa, sb, SequentialConfig(sequential_tuning_parameter=TUNING, difference_type="relative")
            )
        else:
            test = TwoSidedTTest(sa, sb, FrequentistConfig(difference_type="relative"))
        r = test.compute_result()
        out[i] = (r.expected, r.ci[0], r.ci[1], r.p_value)
    return time.perf_counter() - start, out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comparisons", type=int, default=100_000)
    parser.add_argument("--gbstats-subset", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    a, b = _arms(args.comparisons, args.seed)
    subset = min(args.gbstats_subset, args.comparisons)
    print(f"{args.comparisons:,} relative-lift comparisons; gbstats loops over {subset:,}")
    floors = []
    for label, sequential in (("fixed (Welch t)", False), ("sequential (CS)", True)):
        _ours(a[:10], b[:10], sequential)  # warm-up
        ours_s, res = _ours(a, b, sequential)
        gb_s, ref = _gbstats(a, b, subset, sequential)
        mine = np.column_stack([res.effect, res.ci_low, res.ci_high, res.p_value])[:subset]
        ours_rate, gb_rate = args.comparisons / ours_s, subset / gb_s
        print(
            f"{label:18s} tritonab {ours_rate:14,.0f}/s ({ours_s * 1e3:8.1f} ms)   "
            f"gbstats {gb_rate:10,.0f}/s   ratio {ours_rate / gb_rate:8.0f}x   "
            f"max |diff| {np.nanmax(np.abs(mine - ref)):.2e}"
        )
        floors.append(Floor(f"{label} tritonab/gbstats throughput", ours_rate / gb_rate, 100.0))
        # Same answers as the reference, or the speed means nothing.
        floors.append(
            Floor(f"{label} max |diff| vs gbstats", float(np.nanmax(np.abs(mine - ref))), 1e-9, False, "")
        )
    return finish("stats_throughput", floors)


if __name__ == "__main__":
    sys.exit(main())
