"""Thompson sampling against a fixed split and epsilon-greedy, on the issue's arms.

    .venv/bin/python perf/bench/bandit_regret.py [--runs 50] [--seed 2026]

Cumulative (expected) regret at 20,000 units, arms 0.10 / 0.12 / 0.08, weights updated
every 500 units with a 5% floor per arm and at most 0.2 of weight moved per interval,
averaged over `--runs` seeded runs (each policy on its own stream). The floor: Thompson
sampling's regret under half the fixed split's. A seeded simulation, not a timing:
its figures are the same on any machine.
"""

from __future__ import annotations

import argparse
import sys

from _floors import Floor, finish

from tritonab.splitter.bandit_sim import simulate


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    sim = simulate(
        [0.10, 0.12, 0.08],
        horizon=20_000,
        interval=500,
        floor=0.05,
        max_change=0.2,
        seed=args.seed,
        runs=args.runs,
    )
    for name, result in sim.policies.items():
        worst = max(result.regret_runs)
        print(
            f"{name:>15}: regret {result.regret:7.1f} (worst run {worst:6.1f}), {sim.ratio(name):.3f}x fixed"
        )
    thompson = sim.policies["thompson"]
    worst_ratio = max(thompson.regret_runs) / sim.policies["fixed"].regret
    return finish(
        "bandit_regret",
        [
            Floor("Thompson regret / fixed split's (mean of runs)", sim.ratio(), 0.5, higher_is_better=False),
            Floor("Thompson's worst run / fixed split's mean", worst_ratio, 0.75, higher_is_better=False),
        ],
        info={"runs": args.runs, "seed": args.seed, "regret": {k: v.regret for k, v in sim.policies.items()}},
    )


if __name__ == "__main__":
    sys.exit(main())
