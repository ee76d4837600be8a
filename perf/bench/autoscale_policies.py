"""The predictive autoscaler vs the Kubernetes HPA, replayed side by side on the same traces.

    python perf/bench/autoscale_policies.py [--days 7] [--seeds 3] [--capacity-rps 50]

Each diurnal trace (`diurnal_trace`: a 15-minute morning rise, 10% autocorrelated noise,
seeds 0..N-1) is replayed against both policies with the same settings (target 0.7,
90 s start-up, 15 s sync, 300 s scale-down stabilisation); the first two days train the
forecast and are not scored. Floors, pooled over the seeds: SLA-violation minutes at most
0.5x the HPA's, replica-hours at most 1.1x. A bursty trace is reported, not floored
(bursts no forecast can see are followed as fast as the HPA does, not faster).
Deterministic: no wall-clock figure is involved.
"""

from __future__ import annotations

import argparse
import sys

from _floors import Floor, finish

from tritonab.deploy.autoscale import ScalingSettings, bursty_trace, diurnal_trace, simulate

WARMUP_S = 2 * 86400.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=7.0)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--capacity-rps", type=float, default=50.0)
    args = parser.parse_args()
    settings = ScalingSettings(capacity_rps=args.capacity_rps)
    totals = {name: [0.0, 0.0] for name in ("hpa", "predictive")}
    for seed in range(args.seeds):
        result = simulate(diurnal_trace(days=args.days, seed=seed), settings, warmup_s=WARMUP_S)
        for name, r in result.results.items():
            totals[name][0] += r.sla_violation_minutes
            totals[name][1] += r.replica_hours
            print(
                f"diurnal seed {seed} {name:>10}: {r.sla_violation_minutes:7.2f} violation min, "
                f"{r.replica_hours:9.1f} replica-h"
            )
    bursty = simulate(bursty_trace(days=args.days, seed=0), settings, warmup_s=WARMUP_S)
    for name, r in bursty.results.items():
        print(
            f"bursty seed 0  {name:>10}: {r.sla_violation_minutes:7.2f} violation min, "
            f"{r.replica_hours:9.1f} replica-h"
        )
    hpa, predictive = totals["hpa"], totals["predictive"]
    violations = predictive[0] / hpa[0] if hpa[0] else (0.0 if predictive[0] == 0 else float("inf"))
    cost = predictive[1] / hpa[1]
    print(f"pooled predictive / hpa: violation minutes {violations:.3f}x, replica-hours {cost:.3f}x")
    return finish(
        "autoscale_policies",
        [
            Floor("diurnal SLA-violation minutes, predictive / hpa", violations, 0.5, higher_is_better=False),
            Floor("diurnal replica-hours, predictive / hpa", cost, 1.1, higher_is_better=False),
        ],
        {
            "hpa_violation_minutes": hpa[0],
            "bursty_violations_ratio": bursty.ratio("sla_violation_minutes"),
            "bursty_replica_hours_ratio": bursty.ratio("replica_hours"),
        },
    )


if __name__ == "__main__":
    sys.exit(main())
