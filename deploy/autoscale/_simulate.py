"""Replay a request-rate trace against scaling policies and count what each costs.

Time runs in whole seconds from the trace's start. Every `sync_s` each policy sees the
cluster (replicas, those serving, the rate of the last `metric_window_s`) and sets a
replica count: new pods serve `startup_s` later, removed pods stop at once (starting
ones first). Per policy:

- `sla_violation_minutes`: the time, in minutes, during which the offered rate exceeds
  the serving capacity (serving pods x `capacity_rps`);
- `replica_hours`: pods alive (starting or serving: both are paid for), integrated.

Both count only after `warmup_s` (the policies run from the start; a predictive
autoscaler in production starts with Prometheus' history, which the warm-up stands for).
Every policy starts at the replicas the first rate needs, all serving.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from tritonab._io import atomic_write_bytes
from tritonab.deploy.autoscale._policy import (
    ClusterView,
    HPAPolicy,
    Policy,
    PredictivePolicy,
    ScalingSettings,
)
from tritonab.deploy.autoscale._traces import Trace
from tritonab.errors import AutoscaleError

POLICIES = ("hpa", "predictive")


@dataclass(frozen=True)
class PolicyResult:
    """One policy's replay: its costs, and replicas (all, serving) at every sync."""

    name: str
    sla_violation_minutes: float
    replica_hours: float
    scale_events: int
    times: NDArray[np.float64] = field(repr=False)
    replicas: NDArray[np.int64] = field(repr=False)
    ready: NDArray[np.int64] = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "sla_violation_minutes": round(self.sla_violation_minutes, 3),
            "replica_hours": round(self.replica_hours, 3),
            "mean_replicas": round(float(self.replicas.mean()), 3) if len(self.replicas) else 0.0,
            "max_replicas": int(self.replicas.max()) if len(self.replicas) else 0,
            "scale_events": self.scale_events,
        }


@dataclass(frozen=True)
class Simulation:
    """Every policy's result on one trace, with the settings."""

    settings: ScalingSettings
    warmup_s: float
    duration_s: float
    results: dict[str, PolicyResult]

    def ratio(self, metric: str, policy: str = "predictive", baseline: str = "hpa") -> float:
        """`metric` of `policy` over `baseline` (inf when only the baseline is zero)."""
        a = float(getattr(self.results[policy], metric))
        b = float(getattr(self.results[baseline], metric))
        if b == 0:
            return 0.0 if a == 0 else math.inf
        return a / b

    def meets_goal(self, violations: float = 0.5, cost: float = 1.1) -> bool:
        """Whether the predictive policy had at most `violations` x the HPA's
        SLA-violation minutes at no more than `cost` x its replica-hours."""
        hpa, predictive = self.results["hpa"], self.results["predictive"]
        return (
            predictive.sla_violation_minutes <= violations * hpa.sla_violation_minutes
            and predictive.replica_hours <= cost * hpa.replica_hours
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "settings": dict(self.settings.__dict__),
            "warmup_s": self.warmup_s,
            "scored_hours": round((self.duration_s - self.warmup_s) / 3600, 3),
            "policies": {name: r.to_dict() for name, r in self.results.items()},
        }
        if {"hpa", "predictive"} <= set(self.results):
            ratios = {m: self.ratio(m) for m in ("sla_violation_minutes", "replica_hours")}
            out["predictive_vs_hpa"] = {
                k: (None if math.isinf(v) else round(v, 4)) for k, v in ratios.items()
            }
        return out


def make_policy(name: str, settings: ScalingSettings) -> Policy:
    """A policy by name (`hpa` or `predictive`)."""
    if name == "hpa":
        return HPAPolicy(settings)
    if name == "predictive":
        return PredictivePolicy(settings)
    raise AutoscaleError(f"policy `{name}`: expected one of {POLICIES}")


class _Pods:
    """Pods as (created, ready_at, removed) in seconds from the start."""

    def __init__(self, count: int) -> None:
        self.created = [0.0] * count
        self.ready_at = [0.0] * count
        self.removed = [math.inf] * count
        self.alive = list(range(count))

    def counts(self, now: float) -> tuple[int, int]:
        return len(self.alive), sum(1 for i in self.alive if self.ready_at[i] <= now)

    def scale(self, now: float, desired: int, startup_s: float) -> bool:
        current = len(self.alive)
        for _ in range(desired - current):
            self.created.append(now)
            self.ready_at.append(now + startup_s)
            self.removed.append(math.inf)
            self.alive.append(len(self.created) - 1)
        if desired < current:
            self.alive.sort(key=lambda i: self.ready_at[i])  # the last to start go first
            for i in self.alive[desired:]:
                self.removed[i] = now
            self.alive = self.alive[:desired]
        return desired != current

    def per_second(self, seconds: int, start: list[float]) -> NDArray[np.int64]:
        """How many pods are in [start, removed) at each second."""
        diff = np.zeros(seconds + 1, dtype=np.int64)
        for a, b in zip(start, self.removed):
            lo, hi = min(seconds, math.ceil(a)), min(seconds, math.ceil(b) if math.isfinite(b) else seconds)
            if lo < hi:
                diff[lo] += 1
                diff[hi] -= 1
        return np.cumsum(diff)[:seconds]


def _replay(
    policy: Policy, load: NDArray[np.float64], settings: ScalingSettings, warmup_s: float
) -> PolicyResult:
    seconds = len(load)
    csum = np.concatenate([[0.0], np.cumsum(load)])
    pods = _Pods(settings.replicas_for(float(load[0])))
    step, fed = int(settings.step_s), 0
    times, replicas, ready, events = [], [], [], 0
    for now in np.arange(0.0, seconds, settings.sync_s):
        t = int(now)
        while (fed + 1) * step <= t:
            fed += 1
            policy.observe(fed * step, (csum[fed * step] - csum[(fed - 1) * step]) / step)
        lo = max(0, t - int(settings.metric_window_s))
        rate = (csum[t] - csum[lo]) / (t - lo) if t > lo else float(load[0])
        total, serving = pods.counts(now)
        desired = policy.decide(ClusterView(now, total, serving, rate))
        events += pods.scale(now, desired, settings.startup_s)
        times.append(now)
        replicas.append(len(pods.alive))
        ready.append(serving)
    serving_s = pods.per_second(seconds, pods.ready_at)
    alive_s = pods.per_second(seconds, pods.created)
    scored = slice(min(seconds, int(warmup_s)), seconds)
    violated = load[scored] > serving_s[scored] * settings.capacity_rps * (1 + 1e-12)
    return PolicyResult(
        policy.name,
        float(violated.sum()) / 60.0,
        float(alive_s[scored].sum()) / 3600.0,
        events,
        np.asarray(times),
        np.asarray(replicas, dtype=np.int64),
        np.asarray(ready, dtype=np.int64),
    )


def simulate(
    trace: Trace,
    settings: ScalingSettings,
    *,
    policies: Sequence[str] = POLICIES,
    warmup_s: float = 0.0,
) -> Simulation:
    """Replay `trace` against each policy (see the module docstring).

    Args:
        trace: the request rates.
        settings: capacity, targets and timings (the same for every policy).
        policies: names among `hpa`, `predictive`.
        warmup_s: seconds from the start that are not scored.

    Raises:
        AutoscaleError: an unknown policy, or a warm-up as long as the trace.
    """
    duration = int(math.ceil(trace.end - trace.start))
    if not 0 <= warmup_s < duration:
        raise AutoscaleError(f"warm-up {warmup_s:g} s must be shorter than the trace ({duration} s)")
    load = trace.at(trace.start + np.arange(duration, dtype=np.float64))
    results = {name: _replay(make_policy(name, settings), load, settings, warmup_s) for name in policies}
    return Simulation(settings, warmup_s, float(duration), results)


def plot_simulation(
    simulation: Simulation, trace: Trace, path: str | os.PathLike[str], *, last_s: float = 2 * 86400.0
) -> None:
    """A PNG: the offered rate and each policy's serving capacity over the last `last_s`
    scored seconds, with the time over capacity shaded, and replicas below."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = simulation.settings
    begin = max(simulation.warmup_s, simulation.duration_s - last_s)
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 5.6), sharex=True, height_ratios=[3, 2])
    seconds = np.arange(begin, simulation.duration_s, 15.0)
    hours = seconds / 3600.0
    load = trace.at(trace.start + seconds)
    top.plot(hours, load, color="black", lw=0.7, label="offered rate")
    colors = {"hpa": "tab:orange", "predictive": "tab:blue"}
    for name, r in simulation.results.items():
        index = np.clip(np.searchsorted(r.times, seconds, side="right") - 1, 0, len(r.times) - 1)
        capacity = r.ready[index] * s.capacity_rps
        color = colors.get(name)
        label = f"{name}: {r.sla_violation_minutes:.0f} min over capacity, {r.replica_hours:.0f} replica-h"
        top.step(hours, capacity, where="post", color=color, lw=1.0, label=label)
        top.fill_between(hours, capacity, load, where=load > capacity, color=color, alpha=0.35, step="post")
        bottom.step(hours, r.replicas[index], where="post", color=color, lw=1.0, label=name)
    top.set_ylabel("requests/s")
    top.legend(fontsize=8, loc="upper left")
    top.set_title(
        f"serving capacity vs offered rate (capacity {s.capacity_rps:g} rps/replica, target "
        f"{s.target_utilization:g}, start-up {s.startup_s:g} s)",
        fontsize=10,
    )
    bottom.set_ylabel("replicas")
    bottom.set_xlabel("hours since the start of the trace")
    bottom.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    plt.close(fig)
    atomic_write_bytes(path, buffer.getvalue())
