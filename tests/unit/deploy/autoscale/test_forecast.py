"""The forecaster equals statsmodels' Holt-Winters: after a fit, and step by step after."""

from __future__ import annotations

import numpy as np
import pytest
from statsmodels.tsa.holtwinters import ExponentialSmoothing

from tritonab.deploy.autoscale import Forecaster, diurnal_trace
from tritonab.errors import AutoscaleError

SEASON = 24  # a "day" of 24 steps keeps statsmodels fast


def _series(days: int = 5, seed: int = 3) -> np.ndarray:
    trace = diurnal_trace(days=days, step_s=3600.0, correlation_s=0.0, noise=0.05, seed=seed)
    return trace.rps


def test_seasonal_fit_forecasts_as_statsmodels():
    rps = _series()
    forecaster = Forecaster(step_s=3600.0, season_s=SEASON * 3600.0)
    model = forecaster.fit(rps)
    assert model.kind == "seasonal" and model.season_steps == SEASON
    expected = ExponentialSmoothing(
        np.log1p(rps),
        trend="add",
        damped_trend=True,
        seasonal="add",
        seasonal_periods=SEASON,
        initialization_method="heuristic",
    ).fit()
    np.testing.assert_allclose(forecaster.forecast_log(30), expected.forecast(30), rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(forecaster.forecast(30), np.expm1(expected.forecast(30)), rtol=1e-9)


def test_update_follows_statsmodels_recursions():
    """States set from statsmodels' filter at step n, updated with the rest of the data,
    end where statsmodels' filter ends."""
    rps = _series(days=6)
    y = np.log1p(rps)
    result = ExponentialSmoothing(
        y,
        trend="add",
        damped_trend=True,
        seasonal="add",
        seasonal_periods=SEASON,
        initialization_method="heuristic",
    ).fit()
    forecaster = Forecaster(step_s=3600.0, season_s=SEASON * 3600.0)
    forecaster.fit(rps)  # the same parameters as `result`
    n = len(y) - 30
    forecaster.level, forecaster.trend = float(result.level[n - 1]), float(result.trend[n - 1])
    forecaster.seasons.clear()
    forecaster.seasons.extend(np.asarray(result.season)[n - SEASON : n].tolist())
    for value in rps[n:]:
        forecaster.update(float(value))
    assert forecaster.level == pytest.approx(float(result.level[-1]), abs=1e-9)
    assert forecaster.trend == pytest.approx(float(result.trend[-1]), abs=1e-9)
    np.testing.assert_allclose(forecaster.forecast_log(5), result.forecast(5), atol=1e-9)


def test_short_histories_fall_back_to_trend_then_last_value():
    forecaster = Forecaster(step_s=60.0)
    assert forecaster.fit([5.0, 6.0, 7.0]).kind == "naive"
    assert forecaster.forecast(3) == pytest.approx([7.0, 7.0, 7.0])
    assert forecaster.fit(np.linspace(10, 20, 30)).kind == "trend"
    assert forecaster.forecast(1)[0] > 19.0


def test_upper_bound_widens_with_the_horizon_and_is_above_the_median():
    forecaster = Forecaster(step_s=3600.0, season_s=SEASON * 3600.0)
    forecaster.fit(_series())
    median, upper = forecaster.forecast(12), forecaster.forecast(12, 0.95)
    assert np.all(upper > median)
    assert np.all(np.diff(forecaster.forecast_sd(12)) >= 0)


def test_misuse_raises():
    with pytest.raises(AutoscaleError, match="call fit"):
        Forecaster(step_s=60.0).forecast(3)
    with pytest.raises(AutoscaleError, match="finite, non-negative"):
        Forecaster(step_s=60.0).fit([1.0, -2.0])
    forecaster = Forecaster(step_s=60.0)
    forecaster.fit([1.0, 2.0])
    with pytest.raises(AutoscaleError, match="quantile `1.5`"):
        forecaster.forecast(2, 1.5)
