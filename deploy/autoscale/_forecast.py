"""Request-rate forecasts: Holt-Winters on log(1 + rps), fitted by statsmodels, run online.

The model is additive Holt-Winters with a damped additive trend and, once the history
holds two whole seasons (default season: one day), an additive season, on
y = log(1 + rps): a daily pattern that scales with the level, noise proportional to the
rate, and forecasts that never go below zero. With less history it is Holt's damped
trend alone; with fewer than 10 points, the last value (a random walk).

statsmodels (`ExponentialSmoothing`, heuristic initialisation) estimates the smoothing
parameters and the states; after that each new point only updates the states, with the
same recursions statsmodels uses (so the forecasts equal statsmodels' for the same data
and parameters), and the parameters are re-estimated now and then (`refit`).

Prediction intervals use the one-step residual standard deviation `sigma` (log space)
and the class-1 state-space variance of Hyndman et al. (2008):
var(h) = sigma^2 * (1 + sum_{j=1}^{h-1} c_j^2), c_j = alpha * (1 + beta * phi_j) +
gamma * [j mod m == 0], phi_j = phi + ... + phi^j. The upper bound at quantile q is
exp(mean + z_q * sqrt(var)) - 1.
"""

from __future__ import annotations

import functools
import math
import warnings
from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from tritonab.errors import AutoscaleError

ModelKind = Literal["seasonal", "trend", "naive"]
MIN_TREND_POINTS = 10


@dataclass(frozen=True)
class ForecastModel:
    """The fitted parameters: the model kind, smoothing parameters, residual sd (log space)."""

    kind: ModelKind
    alpha: float
    beta: float
    gamma: float
    phi: float
    sigma: float
    season_steps: int
    points: int


@functools.lru_cache(maxsize=32)
def z_score(quantile: float) -> float:
    """The standard normal quantile (cached: the policies ask every sync).

    Raises:
        AutoscaleError: a quantile outside (0, 1).
    """
    if not 0 < quantile < 1:
        raise AutoscaleError(f"quantile `{quantile}` must be in (0, 1)")
    from scipy.stats import norm

    return float(norm.ppf(quantile))


class Forecaster:
    """Holt-Winters on log(1 + rps) at a fixed step (see the module docstring).

    Args:
        step_s: the spacing of the values given to `fit` and `update`.
        season_s: the season (default one day); 0 turns seasonality off.
    """

    def __init__(self, step_s: float, season_s: float = 86400.0) -> None:
        if step_s <= 0:
            raise AutoscaleError(f"forecast step `{step_s}` must be positive")
        self.step_s = step_s
        self.season_steps = int(round(season_s / step_s)) if season_s > 0 else 0
        self.model: ForecastModel | None = None
        self.level = 0.0
        self.trend = 0.0
        self.seasons: deque[float] = deque()

    @property
    def fitted(self) -> bool:
        return self.model is not None

    def fit(self, values: ArrayLike) -> ForecastModel:
        """Estimate the model on a history of rates (oldest first) and set the states.

        Raises:
            AutoscaleError: no values, or negative or non-finite ones.
        """
        rps = np.asarray(values, dtype=np.float64)
        if not len(rps) or not np.all(np.isfinite(rps)) or np.any(rps < 0):
            raise AutoscaleError("a forecast needs at least one finite, non-negative rate")
        y = np.log1p(rps)
        m = self.season_steps
        if m >= 2 and len(y) >= 2 * m + MIN_TREND_POINTS:
            self.model = self._fit_statsmodels(y, seasonal=True)
        elif len(y) >= MIN_TREND_POINTS:
            self.model = self._fit_statsmodels(y, seasonal=False)
        else:
            self._fit_naive(y)
        assert self.model is not None
        return self.model

    def _fit_statsmodels(self, y: NDArray[np.float64], *, seasonal: bool) -> ForecastModel:
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        m = self.season_steps if seasonal else 0
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter on flat or short series
            model = ExponentialSmoothing(
                y,
                trend="add",
                damped_trend=True,
                seasonal="add" if seasonal else None,
                seasonal_periods=m or None,
                initialization_method="heuristic" if seasonal else "estimated",
            )
            result = model.fit()
        p = result.params
        gamma = float(p["smoothing_seasonal"]) if seasonal else 0.0
        resid = np.asarray(result.resid, dtype=np.float64)
        self.level = float(result.level[-1])
        self.trend = float(result.trend[-1])
        self.seasons = (
            deque(np.asarray(result.season, dtype=np.float64)[-m:].tolist()) if seasonal else deque()
        )
        return ForecastModel(
            "seasonal" if seasonal else "trend",
            float(p["smoothing_level"]),
            float(p["smoothing_trend"]),
            gamma,
            float(p["damping_trend"]),
            float(np.std(resid[m:] if seasonal else resid)),
            m,
            len(y),
        )

    def _fit_naive(self, y: NDArray[np.float64]) -> None:
        self.level, self.trend, self.seasons = float(y[-1]), 0.0, deque()
        sigma = float(np.std(np.diff(y))) if len(y) > 2 else 0.1
        self.model = ForecastModel("naive", 1.0, 0.0, 0.0, 1.0, max(sigma, 1e-3), 0, len(y))

    def update(self, value: float) -> None:
        """Add one new rate (one step after the last) to the states.

        Raises:
            AutoscaleError: `fit` was not called first.
        """
        model = self._require()
        y = math.log1p(max(float(value), 0.0))
        season = self.seasons[0] if self.seasons else 0.0
        expected = self.level + model.phi * self.trend
        level = model.alpha * (y - season) + (1 - model.alpha) * expected
        self.trend = model.beta * (level - self.level) + (1 - model.beta) * model.phi * self.trend
        if self.seasons:
            self.seasons.popleft()
            self.seasons.append(model.gamma * (y - expected) + (1 - model.gamma) * season)
        self.level = level

    def forecast_log(self, steps: int) -> NDArray[np.float64]:
        """The mean forecast of log(1 + rps) for the next `steps` steps."""
        model = self._require()
        h = np.arange(1, steps + 1)
        damped = np.cumsum(model.phi ** h.astype(np.float64))
        seasons = np.asarray(self.seasons, dtype=np.float64)
        season = seasons[(h - 1) % len(seasons)] if len(seasons) else np.zeros(steps)
        return np.asarray(self.level + damped * self.trend + season, dtype=np.float64)

    def forecast_sd(self, steps: int) -> NDArray[np.float64]:
        """The forecast's standard deviation (log space) for the next `steps` steps."""
        model = self._require()
        j = np.arange(1, steps, dtype=np.float64)
        phi_j = np.cumsum(model.phi**j)
        c = model.alpha * (1 + model.beta * phi_j)
        if model.season_steps:
            c = c + model.gamma * (j % model.season_steps == 0)
        variance = model.sigma**2 * (1 + np.concatenate([[0.0], np.cumsum(c * c)]))
        return np.asarray(np.sqrt(variance), dtype=np.float64)

    def forecast(self, steps: int, quantile: float | None = None) -> NDArray[np.float64]:
        """Rates for the next `steps` steps: the median (quantile None) or an upper bound.

        Raises:
            AutoscaleError: not fitted, or a quantile outside (0, 1).
        """
        mean = self.forecast_log(steps)
        if quantile is None:
            return np.expm1(mean)
        if not 0 < quantile < 1:
            raise AutoscaleError(f"quantile `{quantile}` must be in (0, 1)")
        from scipy.stats import norm

        return np.asarray(
            np.expm1(mean + float(norm.ppf(quantile)) * self.forecast_sd(steps)), dtype=np.float64
        )

    def _require(self) -> ForecastModel:
        if self.model is None:
            raise AutoscaleError("the forecaster has no history yet: call fit() first")
        return self.model
