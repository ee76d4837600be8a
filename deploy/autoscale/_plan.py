"""Plan and run the predictive policy on live request rates read from Prometheus.

An `Autoscaler` keeps one `PredictivePolicy` fed: its first `tick` reads `history_s` of
the rate (a PromQL range query at the forecast step, missing points carried forward),
replays the decisions of the last stabilisation window over it (so a plan made now
already holds the scale-down stabilisation), and decides; each later tick reads only
the steps completed since. `plan` is one tick; `run` (the CLI) ticks every sync period
and hands each decision to an actuator (`deploy.autoscale._actuate`).

The default query is the request rate of every Triton replica together:
`sum(rate(nv_inference_request_success[W]))` (optionally `{model="NAME"}`), with W the
forecast step but at least 1m, so it holds several scrapes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from tritonab.deploy.autoscale._forecast import MIN_TREND_POINTS
from tritonab.deploy.autoscale._policy import ClusterView, PredictivePolicy, ScalingSettings
from tritonab.errors import AutoscaleError


class RateSource(Protocol):
    """Where request rates come from: the rate at each `step_s` from `start` to `end`."""

    def rates(self, start: float, end: float, step_s: float) -> dict[float, float]: ...


class PrometheusRates:
    """Request rates from a PromQL query (a sum of rates) through `monitoring.promql`.

    Args:
        url: Prometheus base URL.
        query: PromQL giving requests per second (several series are summed).
    """

    def __init__(self, url: str, query: str, *, timeout: float = 10.0) -> None:
        from tritonab.monitoring.promql import RouterQueries

        self.url = url
        self.query = query
        self._queries = RouterQueries(url, timeout=timeout)

    def rates(self, start: float, end: float, step_s: float) -> dict[float, float]:
        return self._queries.range_sum(self.query, start, end, step_s)


def default_query(step_s: float, model: str | None = None) -> str:
    """The request rate of every replica (see the module docstring)."""
    window = f"{max(60, math.ceil(step_s))}s"
    selector = "{" + f'model="{model}"' + "}" if model else ""
    return f"sum(rate(nv_inference_request_success{selector}[{window}]))"


@dataclass(frozen=True)
class ForecastPoint:
    """One step of the forecast: its end, the median and upper rates, replicas for them."""

    time: float
    median_rps: float
    upper_rps: float
    replicas: int


@dataclass(frozen=True)
class Decision:
    """One tick: the rate seen, the peak forecast over start-up + one sync, the raw
    recommendation, the stabilised and bounded count, and the forecast over the horizon."""

    time: float
    observed_rps: float
    peak_median_rps: float
    peak_upper_rps: float
    recommended: int
    desired: int
    model: str
    history_points: int
    forecast: tuple[ForecastPoint, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "observed_rps": round(self.observed_rps, 4),
            "peak_median_rps": round(self.peak_median_rps, 4),
            "peak_upper_rps": round(self.peak_upper_rps, 4),
            "recommended_replicas": self.recommended,
            "desired_replicas": self.desired,
            "model": self.model,
            "history_points": self.history_points,
            "forecast": [
                {
                    "time": p.time,
                    "median_rps": round(p.median_rps, 4),
                    "upper_rps": round(p.upper_rps, 4),
                    "replicas": p.replicas,
                }
                for p in self.forecast
            ],
        }


class Autoscaler:
    """The predictive policy on a live rate source (see the module docstring).

    Args:
        source: the request rates.
        settings: capacity, targets and timings (`horizon_s`: how far the reported
            forecast goes; `history_s`: how much history the first tick reads).
        clock: the time now (Unix seconds).
    """

    def __init__(
        self,
        source: RateSource,
        settings: ScalingSettings,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.source = source
        self.settings = settings
        self.clock = clock
        self.policy = PredictivePolicy(settings)
        self.last_step: float | None = None
        self.last_rate = 0.0
        self.current: int | None = None

    def tick(self, current: int | None = None) -> Decision:
        """Read the new steps, then decide.

        Args:
            current: the replicas running now, when known (else the last decision).

        Raises:
            AutoscaleError: no rate at all in the history window.
            MonitoringError: Prometheus unreachable or the query rejected.
        """
        now = self.clock()
        first = self.last_step is None
        points = self._read(now)
        if first:
            self._replay(points, now)
        else:
            for stamp, rate in points:
                self._observe(stamp, rate)
        if current is not None:
            self.current = current
        return self._decide(now)

    def _read(self, now: float) -> list[tuple[float, float]]:
        s = self.settings
        end = math.floor(now / s.step_s) * s.step_s
        start = end - s.history_s if self.last_step is None else self.last_step + s.step_s
        if start > end:
            return []
        found = self.source.rates(start, end, s.step_s)
        if self.last_step is None and not found:
            raise AutoscaleError(
                f"no request rate in the last {s.history_s:g} s: check the query and that Prometheus "
                "scrapes Triton"
            )
        stamps = np.arange(start, end + s.step_s / 2, s.step_s)
        points: list[tuple[float, float]] = []
        last = self.last_rate
        for stamp in stamps.tolist():
            value = _near(found, stamp, s.step_s)
            if value is None and self.last_step is None and not points:
                continue  # no data yet at the start of the history
            last = last if value is None else value
            points.append((stamp, last))
        return points

    def _observe(self, stamp: float, rate: float) -> None:
        self.policy.observe(stamp, rate)
        self.last_step, self.last_rate = stamp, rate

    def _replay(self, points: list[tuple[float, float]], now: float) -> None:
        """Observe the history; decide at each step of the last stabilisation window."""
        s = self.settings
        replay_from = now - s.stabilization_s
        for stamp, rate in points:
            self._observe(stamp, rate)
            if stamp >= replay_from and self.policy.observed >= MIN_TREND_POINTS:
                # (a decision on a handful of points is a random walk's wide bound)
                replicas = self.current if self.current is not None else s.replicas_for(rate)
                self.current = self.policy.decide(ClusterView(stamp, replicas, replicas, rate))

    def _decide(self, now: float) -> Decision:
        s = self.settings
        replicas = self.current if self.current is not None else s.replicas_for(self.last_rate)
        view = ClusterView(now, replicas, replicas, self.last_rate)
        recommended = self.policy.recommend(view)
        desired = self.policy.decide(view)
        self.current = desired
        peaks = self.policy.peak_rps(now) or (self.last_rate, self.last_rate)
        model = self.policy.forecaster.model
        return Decision(
            now,
            self.last_rate,
            peaks[0],
            peaks[1],
            recommended,
            desired,
            model.kind if model else "none",
            self.policy.observed,
            self._forecast(),
        )

    def _forecast(self) -> tuple[ForecastPoint, ...]:
        s = self.settings
        if self.last_step is None or not self.policy.forecaster.fitted:
            return ()
        steps = max(1, math.ceil(s.horizon_s / s.step_s))
        median = self.policy.forecaster.forecast(steps)
        upper = self.policy.forecaster.forecast(steps, s.quantile)
        return tuple(
            ForecastPoint(self.last_step + (i + 1) * s.step_s, float(m), float(u), _replicas(s, m, u))
            for i, (m, u) in enumerate(zip(median.tolist(), upper.tolist()))
        )


def _near(found: dict[float, float], stamp: float, step_s: float) -> float | None:
    """The value at `stamp` (Prometheus aligns to the step, up to float rounding)."""
    if stamp in found:
        return found[stamp]
    for key in (round(stamp, 3), float(round(stamp))):
        if key in found:
            return found[key]
    return None


def _replicas(settings: ScalingSettings, median: float, upper: float) -> int:
    """Replicas for a median rate at the target and an upper one within capacity."""
    needed = max(median / settings.target_rps, upper / settings.capacity_rps)
    return settings.clamp(math.ceil(needed - 1e-9))


def plan(
    source: RateSource,
    settings: ScalingSettings,
    *,
    current: int | None = None,
    clock: Callable[[], float] = time.time,
) -> Decision:
    """One decision of the predictive policy on the history of `source`.

    Args:
        source: the request rates (e.g. `PrometheusRates`).
        settings: capacity, targets and timings.
        current: the replicas running now, when known.
        clock: the time now (Unix seconds).

    Raises:
        AutoscaleError: no rate in the history window.
        MonitoringError: Prometheus unreachable or the query rejected.
    """
    return Autoscaler(source, settings, clock=clock).tick(current)
