"""Scaling policies: the Kubernetes HPA algorithm and the predictive (forecast-driven) one.

Both see the same `ClusterView` every sync period and answer a desired replica count.

**HPA** (as documented for `autoscaling/v2`, a Pods metric of requests per second per
pod with an `AverageValue` target of `target_utilization * capacity_rps`):

- usage ratio = (load over the last `metric_window_s` / ready pods) / target;
- within `tolerance` (10%) of 1: keep the current count;
- else desired = ceil(ratio * ready pods); when scaling up while pods are still
  starting, those count as using nothing: desired = ceil(load / target), and no change
  if that is within tolerance or not a scale up;
- scale-up rate limit (the default behaviour): at most max(double, +4 pods) per sync;
- scale-down stabilisation: the highest recommendation of the last `stabilization_s`
  (300 s); min/max replicas.

**Predictive**: rates observed per `step_s` feed a `Forecaster` (Holt-Winters with daily
seasonality on log rates, re-estimated as history grows and at least daily). Capacity
ordered now serves only after `startup_s`, and the next decision comes one sync later,
so each sync looks `startup_s + sync_s` ahead (`lead_s`) and asks for the most of

- the median forecast of the peak rate over that lead, at `target_utilization` (the
  cost setting, as for the HPA);
- the upper bound of that peak within full capacity (the SLA guard): the median raised
  by the `quantile` (0.95) of the policy's own past peak errors (log space), or by the
  model's prediction interval until 60 errors are known;
- the rate observed over the last `metric_window_s` within full capacity (a burst no
  forecast saw is still followed).

While the current count carries the median peak within the HPA's `tolerance` of the
target (and satisfies both guards) it is kept, so the policy does not flap; then the
same scale-down stabilisation and min/max. It needs no rate limit: it is its own
controller.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from tritonab.deploy.autoscale._forecast import Forecaster, ForecastModel
from tritonab.errors import AutoscaleError

DAY_S = 86400.0
MIN_ERRORS = 60


@dataclass(frozen=True)
class ScalingSettings:
    """Capacity, targets and timings shared by the policies (see the module docstring).

    Attributes:
        capacity_rps: the request rate one replica sustains with p99 inside the SLA.
        target_utilization: the share of that capacity to plan for.
        min_replicas, max_replicas: bounds.
        sync_s: how often a policy decides (the HPA's sync period).
        stabilization_s: scale-down stabilisation window.
        startup_s: time from ordering a pod to its serving traffic.
        horizon_s: how far ahead a plan reports its forecast (`autoscale plan`).
        quantile: the forecast's upper bound the predictive policy provisions for.
        tolerance: the HPA's tolerance on the usage ratio.
        metric_window_s: the window of the observed rate (a `rate(...[1m])`).
        step_s: the forecast step (history resolution).
        history_s: how much history the forecaster is fitted on.
    """

    capacity_rps: float
    target_utilization: float = 0.7
    min_replicas: int = 1
    max_replicas: int = 100
    sync_s: float = 15.0
    stabilization_s: float = 300.0
    startup_s: float = 90.0
    horizon_s: float = 900.0
    quantile: float = 0.95
    tolerance: float = 0.1
    metric_window_s: float = 60.0
    step_s: float = 60.0
    history_s: float = 7 * DAY_S

    def __post_init__(self) -> None:
        if self.capacity_rps <= 0:
            raise AutoscaleError(f"capacity `{self.capacity_rps}` rps must be positive")
        if not 0 < self.target_utilization <= 1:
            raise AutoscaleError(f"target utilization `{self.target_utilization}` must be in (0, 1]")
        if not 1 <= self.min_replicas <= self.max_replicas:
            raise AutoscaleError(
                f"replicas: expected 1 <= min ({self.min_replicas}) <= max ({self.max_replicas})"
            )
        if not 0 < self.quantile < 1:
            raise AutoscaleError(f"quantile `{self.quantile}` must be in (0, 1)")
        if min(self.sync_s, self.step_s, self.metric_window_s) <= 0:
            raise AutoscaleError("sync, step and metric window must be positive")
        if min(self.startup_s, self.horizon_s, self.stabilization_s) < 0:
            raise AutoscaleError("start-up, horizon and stabilisation cannot be negative")

    @property
    def lead_s(self) -> float:
        """How far ahead a decision must cover: the start-up, then one sync."""
        return self.startup_s + self.sync_s

    @property
    def target_rps(self) -> float:
        """The rate one replica is planned to carry."""
        return self.capacity_rps * self.target_utilization

    def clamp(self, replicas: int) -> int:
        return max(self.min_replicas, min(self.max_replicas, replicas))

    def replicas_for(self, rps: float) -> int:
        """Replicas that carry `rps` at the target utilisation (bounded)."""
        return self.clamp(math.ceil(max(rps, 0.0) / self.target_rps - 1e-9))


@dataclass(frozen=True)
class ClusterView:
    """What a policy sees at a sync: time, replicas (all, and serving), the observed rate."""

    now: float
    replicas: int
    ready: int
    load_rps: float


class Policy(Protocol):
    """A scaling policy: `observe` each completed step's mean rate, `decide` each sync."""

    name: str

    def observe(self, end: float, rps: float) -> None: ...

    def decide(self, view: ClusterView) -> int: ...


class Stabilizer:
    """Scale-down stabilisation: the highest recommendation of the last `window_s`."""

    def __init__(self, window_s: float) -> None:
        self.window_s = window_s
        self._seen: deque[tuple[float, int]] = deque()

    def __call__(self, now: float, recommendation: int) -> int:
        self._seen.append((now, recommendation))
        while self._seen and self._seen[0][0] < now - self.window_s:
            self._seen.popleft()
        return max(r for _, r in self._seen)


class HPAPolicy:
    """The Kubernetes HPA algorithm (see the module docstring)."""

    name = "hpa"

    def __init__(self, settings: ScalingSettings) -> None:
        self.settings = settings
        self._stabilize = Stabilizer(settings.stabilization_s)

    def observe(self, end: float, rps: float) -> None:
        return None

    def recommend(self, view: ClusterView) -> int:
        """The raw recommendation before stabilisation and limits."""
        s = self.settings
        if view.ready == 0:
            return view.replicas
        ratio = view.load_rps / view.ready / s.target_rps
        if abs(ratio - 1) <= s.tolerance:
            return view.replicas
        unready = view.replicas - view.ready
        if ratio > 1 and unready > 0:
            # starting pods count as using nothing: a damped scale up
            adjusted = view.load_rps / view.replicas / s.target_rps
            if adjusted <= 1 + s.tolerance:
                return view.replicas
            return math.ceil(adjusted * view.replicas - 1e-9)
        return math.ceil(ratio * view.ready - 1e-9)

    def decide(self, view: ClusterView) -> int:
        desired = self._stabilize(view.now, self.recommend(view))
        if desired > view.replicas:
            desired = min(desired, max(2 * view.replicas, view.replicas + 4))
        return self.settings.clamp(desired)


class PredictivePolicy:
    """Forecast-driven replicas (see the module docstring).

    Args:
        settings: capacity, targets and timings.
        season_s: the forecaster's season (one day).
        refit_s: re-estimate the model at least this often (and whenever the history
            doubled, or became long enough for seasonality).
        calibration_s: how much recent history the peak's error quantile is taken from.
    """

    name = "predictive"

    def __init__(
        self,
        settings: ScalingSettings,
        *,
        season_s: float = DAY_S,
        refit_s: float = DAY_S,
        calibration_s: float = 3 * DAY_S,
    ) -> None:
        self.settings = settings
        self.forecaster = Forecaster(settings.step_s, season_s)
        self.refit_steps = max(1, int(refit_s / settings.step_s))
        self.history: deque[float] = deque(maxlen=max(2, int(settings.history_s / settings.step_s)))
        self.lead_steps = max(1, math.ceil(settings.lead_s / settings.step_s))
        self.errors: deque[float] = deque(maxlen=max(MIN_ERRORS, int(calibration_s / settings.step_s)))
        self._pending: deque[tuple[int, float]] = deque()
        self.observed = 0
        self.last_end: float | None = None
        self._fitted_at = 0
        self._since_fit = 0
        self._stabilize = Stabilizer(settings.stabilization_s)
        self.fits: list[ForecastModel] = []

    def observe(self, end: float, rps: float) -> None:
        """The mean rate of the step ending at `end`."""
        self.history.append(rps)
        self.observed += 1
        self.last_end = end
        self._since_fit += 1
        self._score_due()
        n = len(self.history)
        seasonal_now = self.forecaster.season_steps and n >= 2 * self.forecaster.season_steps + 10
        model = self.forecaster.model
        due = (
            model is None
            or n >= 2 * self._fitted_at
            or self._since_fit >= self.refit_steps
            or (seasonal_now and model.kind != "seasonal")
        )
        if due:
            self.fits.append(self.forecaster.fit(np.asarray(self.history)))
            self._fitted_at, self._since_fit = n, 0
        else:
            self.forecaster.update(rps)
        peak = float(np.max(self.forecaster.forecast_log(self.lead_steps)))
        self._pending.append((self.observed + self.lead_steps, peak))

    def _score_due(self) -> None:
        """Errors (log space) of the peak forecasts whose window has now passed."""
        while self._pending and self._pending[0][0] <= self.observed:
            due, predicted = self._pending.popleft()
            back = self.observed - due
            if back + self.lead_steps > len(self.history):
                continue
            window = [self.history[-1 - back - k] for k in range(self.lead_steps)]
            self.errors.append(math.log1p(max(window)) - predicted)

    def peak_rps(self, now: float) -> tuple[float, float] | None:
        """The median and upper forecast of the peak rate until capacity ordered now has
        served one sync (None: no history yet). The upper bound adds the `quantile` of
        past peak errors (the model's prediction interval until MIN_ERRORS are known)."""
        s = self.settings
        if self.last_end is None or not self.forecaster.fitted:
            return None
        steps = max(1, math.ceil((now + s.lead_s - self.last_end) / s.step_s))
        median = float(np.max(self.forecaster.forecast_log(steps)))
        if len(self.errors) < MIN_ERRORS:
            upper = float(np.max(self.forecaster.forecast(steps, s.quantile)))
            return float(np.expm1(median)), upper
        margin = max(0.0, float(np.quantile(np.asarray(self.errors), s.quantile)))
        return float(np.expm1(median)), float(np.expm1(median + margin))

    def recommend(self, view: ClusterView) -> int:
        """The raw recommendation before stabilisation: the median peak at the target
        utilisation, the upper peak and the observed rate within full capacity."""
        s = self.settings
        guard = view.load_rps / s.capacity_rps
        peaks = self.peak_rps(view.now)
        if peaks is None:
            return s.replicas_for(view.load_rps)
        guard = max(guard, peaks[1] / s.capacity_rps)
        planned = peaks[0] / s.target_rps
        if view.replicas >= guard and abs(planned / max(view.replicas, 1) - 1) <= s.tolerance:
            return view.replicas  # within the HPA's tolerance: no flapping
        return s.clamp(math.ceil(max(planned, guard) - 1e-9))

    def decide(self, view: ClusterView) -> int:
        return self.settings.clamp(self._stabilize(view.now, self.recommend(view)))
