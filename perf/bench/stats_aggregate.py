"""From raw per-unit arrays to a decision, vs a plain pandas groupby of the same arrays.

    python perf/bench/stats_aggregate.py [--units 10000000] [--repeats 3]

Two variants, three metrics per unit: a conversion (0/1), a revenue mean and revenue per
session (a ratio). tritonab builds the sufficient statistics with np.bincount, compares
and decides; pandas only runs `df.groupby("variant").agg(...)` (count, sum, var per
column) on a DataFrame built beforehand. Best of `--repeats`; prints the ratio.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from tritonab.splitter import stats

CRITERIA = stats.SuccessCriteria(
    primary=stats.PrimaryMetric(name="conversion", direction="increase", minimum_effect=0.002),
    guardrails=(
        stats.GuardrailMetric(name="revenue", bad_direction="decrease", max_degradation=0.02,
                              relative=True),
        stats.GuardrailMetric(name="revenue_per_session", bad_direction="decrease",
                              max_degradation=0.02, relative=True),
    ),
)


def _data(units: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    variant = rng.integers(0, 2, units)
    conversion = rng.random(units) < 0.10 + 0.004 * variant
    sessions = rng.poisson(3.0, units) + 1.0
    revenue = conversion * rng.gamma(2.0, 20.0, units)
    return {"variant": variant, "conversion": conversion, "revenue": revenue,
            "sessions": sessions}


def _tritonab(d: dict[str, np.ndarray]) -> stats.Decision:
    g = d["variant"]
    conv = stats.Proportion.from_groups(d["conversion"], g, 2)
    rev = stats.SampleMean.from_groups(d["revenue"], g, 2)
    rps = stats.Ratio.from_groups(d["revenue"], d["sessions"], g, 2)
    metrics = {"conversion": (conv[0], conv[1]), "revenue": (rev[0], rev[1]),
               "revenue_per_session": (rps[0], rps[1])}
    return stats.decide(CRITERIA, metrics, counts=conv.n, weights=[0.5, 0.5])


def _pandas(df: pd.DataFrame) -> pd.DataFrame:
    return df.groupby("variant").agg(
        n=("conversion", "count"), conversions=("conversion", "sum"),
        revenue_sum=("revenue", "sum"), revenue_var=("revenue", "var"),
        sessions_sum=("sessions", "sum"), sessions_var=("sessions", "var"))


def _best(fn, arg, repeats: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn(arg)
        best = min(best, time.perf_counter() - start)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--units", type=int, default=10_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    data = _data(args.units, args.seed)
    df = pd.DataFrame(data)
    ours_s, decision = _best(_tritonab, data, args.repeats)
    pandas_s, _ = _best(_pandas, df, args.repeats)
    print(f"{args.units:,} units, 2 variants, 3 metrics (best of {args.repeats})")
    print(f"tritonab arrays -> decision: {ours_s * 1e3:9.1f} ms  ({decision.outcome.value})")
    print(f"pandas groupby().agg only:   {pandas_s * 1e3:9.1f} ms")
    print(f"ratio pandas / tritonab:     {pandas_s / ours_s:9.2f}x (floor 1.0x)")


if __name__ == "__main__":
    main()
