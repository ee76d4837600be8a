"""From raw per-unit arrays to a decision, vs a plain pandas groupby of the same arrays.

    python perf/bench/stats_aggregate.py [--units 10000000] [--repeats 3]

Two variants, three metrics per unit: a conversion (0/1), a revenue mean and revenue per
session (a ratio). tritonab builds the sufficient statistics with `stats.aggregate` (one
group pass shared by the metrics), compares and decides. pandas only runs
`df.groupby("variant").agg(...)` on a DataFrame built beforehand, computing what the same
three metrics need: count, conversions, sum and var of revenue and of sessions, and the
sum of revenue x sessions (the ratio's covariance), whose product column is part of the
untimed DataFrame build (tritonab computes its cross products from the raw arrays in its
timed run). Runs alternate; best of `--repeats` each; prints the ratio.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import numpy as np
import pandas as pd
from _floors import Floor, finish

from tritonab.splitter import stats

CRITERIA = stats.SuccessCriteria(
    primary=stats.PrimaryMetric(name="conversion", direction="increase", minimum_effect=0.002),
    guardrails=(
        stats.GuardrailMetric(name="revenue", bad_direction="decrease", max_degradation=0.02, relative=True),
        stats.GuardrailMetric(
            name="revenue_per_session", bad_direction="decrease", max_degradation=0.02, relative=True
        ),
    ),
)


def _data(units: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    variant = rng.integers(0, 2, units)
    conversion = rng.random(units) < 0.10 + 0.004 * variant
    sessions = rng.poisson(3.0, units) + 1.0
    revenue = conversion * rng.gamma(2.0, 20.0, units)
    return {"variant": variant, "conversion": conversion, "revenue": revenue, "sessions": sessions}


def _aggregate(d: dict[str, np.ndarray]) -> dict[str, Any]:
    return stats.aggregate(
        d["variant"],
        {
            "conversion": ("proportion", d["conversion"]),
            "revenue": ("mean", d["revenue"]),
            "revenue_per_session": ("ratio", d["revenue"], d["sessions"]),
        },
        n_groups=2,
    )


def _tritonab(d: dict[str, np.ndarray]) -> stats.Decision:
    grouped = _aggregate(d)
    metrics = {name: (s[0], s[1]) for name, s in grouped.items()}
    return stats.decide(CRITERIA, metrics, counts=grouped["conversion"].n, weights=[0.5, 0.5])


def _pandas(df: pd.DataFrame) -> pd.DataFrame:
    return df.groupby("variant").agg(
        n=("conversion", "count"),
        conversions=("conversion", "sum"),
        revenue_sum=("revenue", "sum"),
        revenue_var=("revenue", "var"),
        sessions_sum=("sessions", "sum"),
        sessions_var=("sessions", "var"),
        revenue_x_sessions_sum=("revenue_x_sessions", "sum"),
    )


def _frame(d: dict[str, np.ndarray]) -> pd.DataFrame:
    return pd.DataFrame({**d, "revenue_x_sessions": d["revenue"] * d["sessions"]})


def _same_sums(d: dict[str, np.ndarray], table: pd.DataFrame) -> None:
    """Untimed: both sides computed the same per-variant statistics."""
    g = _aggregate(d)
    conv, rev, rps = g["conversion"], g["revenue"], g["revenue_per_session"]
    pairs = [
        (conv.n, table["n"]),
        (conv.successes, table["conversions"]),
        (rev.sum, table["revenue_sum"]),
        (rev.variance, table["revenue_var"]),
        (rps.den_sum, table["sessions_sum"]),
        (_sample_var(rps.n, rps.den_sum, rps.den_sum_squares), table["sessions_var"]),
        (rps.num_den_sum, table["revenue_x_sessions_sum"]),
    ]
    for ours, theirs in pairs:
        np.testing.assert_allclose(ours, theirs.to_numpy(dtype=float), rtol=1e-9)


def _sample_var(n: np.ndarray, total: np.ndarray, squares: np.ndarray) -> np.ndarray:
    return (squares - total**2 / n) / (n - 1)


def _best(fns: list, args: list, repeats: int) -> tuple[list[float], list[object]]:
    """Best time of each function, runs alternating so that load hits both alike."""
    best, outs = [float("inf")] * len(fns), [None] * len(fns)
    for _ in range(repeats):
        for i, (fn, arg) in enumerate(zip(fns, args)):
            start = time.perf_counter()
            outs[i] = fn(arg)
            best[i] = min(best[i], time.perf_counter() - start)
    return best, outs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = _data(args.units, args.seed)
    df = _frame(data)
    (ours_s, pandas_s), (decision, table) = _best([_tritonab, _pandas], [data, df], args.repeats)
    _same_sums(data, table)
    print(f"{args.units:,} units, 2 variants, 3 metrics (best of {args.repeats})")
    print(f"tritonab arrays -> decision: {ours_s * 1e3:9.1f} ms  ({decision.outcome.value})")
    print(f"pandas groupby().agg only:   {pandas_s * 1e3:9.1f} ms")
    return finish("stats_aggregate", [Floor("pandas/tritonab time", pandas_s / ours_s, 1.0)])


if __name__ == "__main__":
    sys.exit(main())
