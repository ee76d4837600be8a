"""Simulated bandits on Bernoulli arms: what adaptive allocation saves against a fixed split.

Units arrive in intervals of `interval`; each interval the policy's weights split them
among the arms (a multinomial draw), each arm converts at its true rate (binomial
draws), and the policy updates its weights from everything seen so far:

- `thompson`: `bandit.thompson_weights` (posterior probability of being best, with the
  floor and the maximum change per interval the router would get);
- `fixed`: an equal split, never updated (a classic A/B/n test);
- `epsilon_greedy`: `epsilon` spread evenly, the rest on the best mean so far (arms not
  yet seen first), constrained the same way as Thompson sampling.

Regret is the expected (pseudo-)regret: each unit sent to arm `i` costs
`max(p) - p_i` conversions. Every run and policy draws from its own stream spawned
from `seed` (`numpy.random.SeedSequence`), so a policy's result depends on the seed
alone, not on which other policies run or in what order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tritonab.errors import StatsError
from tritonab.splitter.bandit import FloatArray, constrain, equal_split, thompson_weights
from tritonab.splitter.stats._sufficient import Proportion

POLICIES = ("thompson", "fixed", "epsilon_greedy")
DEFAULT_SIM_DRAWS = 2_000


@dataclass(frozen=True)
class PolicyResult:
    """One policy over every run.

    Attributes:
        name: the policy.
        regret: mean cumulative regret at the horizon.
        regret_runs: each run's regret at the horizon.
        curve: mean cumulative regret after each interval.
        pulls: mean units sent to each arm.
        final_weights: mean weights after the last interval.
    """

    name: str
    regret: float
    regret_runs: tuple[float, ...]
    curve: tuple[float, ...]
    pulls: tuple[float, ...]
    final_weights: tuple[float, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "regret": self.regret,
            "regret_runs": list(self.regret_runs),
            "curve": list(self.curve),
            "pulls": list(self.pulls),
            "final_weights": list(self.final_weights),
        }


@dataclass(frozen=True)
class Simulation:
    """A simulation's settings and each policy's result."""

    arms: tuple[float, ...]
    horizon: int
    interval: int
    floor: float
    max_change: float
    epsilon: float
    seed: int
    runs: int
    draws: int
    units: tuple[int, ...]
    policies: dict[str, PolicyResult] = field(default_factory=dict)

    def ratio(self, policy: str = "thompson", baseline: str = "fixed") -> float:
        """`policy`'s regret over `baseline`'s at the horizon (inf when the baseline has none).

        Raises:
            StatsError: a policy that was not simulated.
        """
        for name in (policy, baseline):
            if name not in self.policies:
                raise StatsError(f"policy `{name}` was not simulated (have {sorted(self.policies)})")
        base = self.policies[baseline].regret
        return self.policies[policy].regret / base if base > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the settings, the interval ends, each policy, and Thompson/fixed."""
        out: dict[str, Any] = {
            "arms": list(self.arms),
            "horizon": self.horizon,
            "interval": self.interval,
            "floor": self.floor,
            "max_change": self.max_change,
            "epsilon": self.epsilon,
            "seed": self.seed,
            "runs": self.runs,
            "draws": self.draws,
            "units": list(self.units),
            "policies": {name: result.to_dict() for name, result in self.policies.items()},
        }
        if {"thompson", "fixed"} <= self.policies.keys():
            out["thompson_over_fixed"] = self.ratio()
        return out


@dataclass(frozen=True)
class _Settings:
    arms: FloatArray
    horizon: int
    interval: int
    floor: float
    max_change: float
    epsilon: float
    draws: int


def _check(
    arms: Sequence[float], horizon: int, interval: int, floor: float, epsilon: float, runs: int
) -> None:
    """Settings a simulation can run."""
    if len(arms) < 2 or any(not 0.0 <= p <= 1.0 for p in arms):
        raise StatsError(f"`arms` must be at least 2 conversion rates in [0, 1], got {list(arms)}")
    if horizon < 1 or interval < 1 or runs < 1:
        raise StatsError(
            f"`horizon`, `interval` and `runs` must be at least 1, got {horizon}, {interval}, {runs}"
        )
    if not 0.0 <= floor <= 1.0 / len(arms):
        raise StatsError(f"`floor` must be in [0, 1/{len(arms)}], got {floor:g}")
    if not 0.0 <= epsilon <= 1.0:
        raise StatsError(f"`epsilon` must be in [0, 1], got {epsilon:g}")


def _next_weights(
    policy: str, n: FloatArray, s: FloatArray, w: FloatArray, cfg: _Settings, rng: np.random.Generator
) -> FloatArray:
    """The policy's weights for the next interval."""
    if policy == "fixed":
        return w
    if policy == "thompson":
        weights, _ = thompson_weights(
            Proportion(n, s), w, floor=cfg.floor, max_change=cfg.max_change, draws=cfg.draws, rng=rng
        )
        return weights
    means = np.where(n > 0, s / np.maximum(n, 1.0), np.inf)  # arms not yet seen look best
    target = np.full(n.size, cfg.epsilon / n.size)
    target[int(np.argmax(means))] += 1.0 - cfg.epsilon
    return constrain(target, w, floor=cfg.floor, max_change=cfg.max_change)


def _run(policy: str, cfg: _Settings, rng: np.random.Generator) -> tuple[FloatArray, FloatArray, FloatArray]:
    """One run: cumulative regret after each interval, units per arm, final weights."""
    k = cfg.arms.size
    gaps = cfg.arms.max() - cfg.arms
    n, s, w = np.zeros(k), np.zeros(k), equal_split(k)
    curve, regret, seen = [], 0.0, 0
    while seen < cfg.horizon:
        units = min(cfg.interval, cfg.horizon - seen)
        counts = rng.multinomial(units, w / w.sum()).astype(np.float64)
        s += rng.binomial(counts.astype(np.int64), cfg.arms)
        n += counts
        regret += float(counts @ gaps)
        seen += units
        curve.append(regret)
        if seen < cfg.horizon:
            w = _next_weights(policy, n, s, w, cfg, rng)
    return np.asarray(curve), n, w


def simulate(
    arms: Sequence[float],
    *,
    horizon: int,
    interval: int,
    floor: float = 0.0,
    max_change: float = 1.0,
    seed: int = 0,
    runs: int = 1,
    epsilon: float = 0.1,
    draws: int = DEFAULT_SIM_DRAWS,
    policies: Sequence[str] = POLICIES,
) -> Simulation:
    """Cumulative regret of each policy on Bernoulli arms, averaged over `runs`.

    Args:
        arms: each arm's true conversion rate.
        horizon: units in all.
        interval: units between two weight updates.
        floor: each arm's minimum weight (Thompson sampling and epsilon-greedy).
        max_change: the largest move of one arm's weight per interval.
        seed: the seed every stream is spawned from.
        runs: independent repetitions.
        epsilon: epsilon-greedy's exploration share.
        draws: posterior draws per Thompson update.
        policies: which of `POLICIES` to run.

    Returns:
        A `Simulation`; `ratio()` is Thompson's regret over the fixed split's.

    Raises:
        StatsError: bad settings or an unknown policy.
    """
    _check(arms, horizon, interval, floor, epsilon, runs)
    unknown = [p for p in policies if p not in POLICIES]
    if unknown:
        raise StatsError(f"unknown policies {unknown}: expected some of {list(POLICIES)}")
    cfg = _Settings(np.asarray(arms, dtype=np.float64), horizon, interval, floor, max_change, epsilon, draws)
    streams = [seq.spawn(len(POLICIES)) for seq in np.random.SeedSequence(seed).spawn(runs)]
    results: dict[str, PolicyResult] = {}
    units: tuple[int, ...] = ()
    for policy in policies:
        curves, pulls, finals = [], [], []
        for run_streams in streams:
            curve, n, w = _run(policy, cfg, np.random.default_rng(run_streams[POLICIES.index(policy)]))
            curves.append(curve)
            pulls.append(n)
            finals.append(w)
        mean_curve = np.mean(curves, axis=0)
        units = tuple(min(horizon, interval * (i + 1)) for i in range(mean_curve.size))
        results[policy] = PolicyResult(
            name=policy,
            regret=float(mean_curve[-1]),
            regret_runs=tuple(float(c[-1]) for c in curves),
            curve=tuple(float(x) for x in mean_curve),
            pulls=tuple(float(x) for x in np.mean(pulls, axis=0)),
            final_weights=tuple(float(x) for x in np.mean(finals, axis=0)),
        )
    return Simulation(
        arms=tuple(float(p) for p in arms),
        horizon=horizon,
        interval=interval,
        floor=floor,
        max_change=max_change,
        epsilon=epsilon,
        seed=seed,
        runs=runs,
        draws=draws,
        units=units,
        policies=results,
    )
