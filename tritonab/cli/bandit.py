"""`tritonab bandit simulate`: what Thompson sampling saves against a fixed split.

Example:
    tritonab bandit simulate --arms 0.10,0.12,0.08 --horizon 20000 --interval 500 \\
        --floor 0.05 --seed 7 --json regret.json

Deterministic for a seed. The live form is a rollout: `strategy: bandit` in a rollout
spec (`tritonab rollout run`).
"""

from __future__ import annotations

import argparse
import json

from tritonab.cli._common import positive_int


def _rates(text: str) -> list[float]:
    try:
        rates = [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected rates like 0.10,0.12,0.08, got {text}") from None
    if len(rates) < 2:
        raise argparse.ArgumentTypeError("expected at least two arms")
    return rates


def register(subparsers) -> None:
    """Add `bandit simulate`."""
    p = subparsers.add_parser("bandit", help="bandit allocation: simulate Thompson sampling's regret")
    sub = p.add_subparsers(dest="bandit_command", metavar="COMMAND", required=True)
    s = sub.add_parser(
        "simulate",
        help="cumulative regret of Thompson sampling, a fixed split and epsilon-greedy",
        description="Simulate Bernoulli arms: units arrive in intervals, each policy sets the "
        "weights for the next interval from what it has seen. Regret is the expected "
        "number of conversions lost against always serving the best arm.",
    )
    s.add_argument("--arms", type=_rates, required=True, metavar="P1,P2,...", help="true conversion rates")
    s.add_argument("--horizon", type=positive_int, required=True, help="units in all")
    s.add_argument("--interval", type=positive_int, required=True, help="units between weight updates")
    s.add_argument("--floor", type=float, default=0.0, help="each arm's minimum weight (default 0)")
    s.add_argument(
        "--max-change", type=float, default=1.0, help="largest weight move per interval (default 1)"
    )
    s.add_argument("--epsilon", type=float, default=0.1, help="epsilon-greedy's exploration (default 0.1)")
    s.add_argument("--runs", type=positive_int, default=1, help="repetitions averaged (default 1)")
    s.add_argument(
        "--draws", type=positive_int, default=2000, help="posterior draws per update (default 2000)"
    )
    s.add_argument("--seed", type=int, default=0, help="seed of every random stream (default 0)")
    s.add_argument("--json", metavar="FILE", help="write the curves and totals as JSON")
    s.set_defaults(func=_simulate)


def _simulate(args: argparse.Namespace) -> int:
    """`bandit simulate`: one table, Thompson's regret over the fixed split's, and JSON."""
    from rich.console import Console
    from rich.table import Table

    from tritonab._io import atomic_write_text
    from tritonab.splitter.bandit_sim import simulate

    sim = simulate(
        args.arms,
        horizon=args.horizon,
        interval=args.interval,
        floor=args.floor,
        max_change=args.max_change,
        seed=args.seed,
        runs=args.runs,
        epsilon=args.epsilon,
        draws=args.draws,
    )
    table = Table(title=f"arms {', '.join(f'{p:g}' for p in sim.arms)}: regret after {sim.horizon:,} units")
    for column in ("policy", "regret", "vs fixed", "units per arm", "final weights"):
        table.add_column(column, justify="left" if column == "policy" else "right")
    for name, result in sim.policies.items():
        table.add_row(
            name,
            f"{result.regret:.1f}",
            f"{sim.ratio(name):.3f}x",
            " ".join(f"{x:,.0f}" for x in result.pulls),
            " ".join(f"{x:.3f}" for x in result.final_weights),
        )
    console = Console(highlight=False)
    console.print(table)
    console.print(
        f"Thompson sampling's regret is {sim.ratio():.3f}x the fixed split's "
        f"(interval {sim.interval:,}, floor {sim.floor:g}, max change {sim.max_change:g}, "
        f"seed {sim.seed}, {sim.runs} run(s))"
    )
    if args.json:
        atomic_write_text(args.json, json.dumps(sim.to_dict(), indent=2) + "\n")
    return 0
