"""CUPED against gbstats' regression adjustment; the Gaussian-approximation Bayes summary."""

import numpy as np
import pytest
from gbstats.frequentist.tests import FrequentistConfig, TwoSidedTTest
from gbstats.models.statistics import (
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
    compute_theta,
)
from scipy import stats as sps

from tritonab.errors import StatsError
from tritonab.splitter import stats

RNG = np.random.default_rng(5)
XC, XT = RNG.normal(10, 3, 800), RNG.normal(10, 3, 900)
YC = 0.8 * XC + RNG.normal(0, 1.5, 800)
YT = 0.8 * XT + RNG.normal(0.3, 1.5, 900)


def _gb(y, x):
    return RegressionAdjustedStatistic(
        n=y.size,
        post_statistic=SampleMeanStatistic(n=y.size, sum=y.sum(), sum_squares=(y * y).sum()),
        pre_statistic=SampleMeanStatistic(n=x.size, sum=x.sum(), sum_squares=(x * x).sum()),
        post_pre_sum_of_products=(x * y).sum(),
        theta=0,
    )


def test_cuped_matches_gbstats_regression_adjustment():
    c, t = stats.cuped_from_arrays(YC, XC, YT, XT)
    a, b = _gb(YC, XC), _gb(YT, XT)
    theta = compute_theta(a, b)
    a.theta, b.theta = theta, theta
    ref = TwoSidedTTest(a, b, FrequentistConfig(difference_type="absolute")).compute_result()
    res = stats.compare(c, t)
    assert c.theta == pytest.approx(theta, rel=1e-10)
    assert res.effect == pytest.approx(ref.expected, rel=1e-10)
    assert [res.ci_low, res.ci_high] == pytest.approx(ref.ci, rel=1e-9)
    assert res.p_value == pytest.approx(ref.p_value, rel=1e-8)


def test_cuped_reduces_variance_and_sums_combine():
    plain = stats.compare(stats.SampleMean.from_values(YC), stats.SampleMean.from_values(YT))
    days = [stats.CovariateMean.from_values(YC[i::3], XC[i::3]) for i in range(3)]
    whole = stats.CovariateMean.from_values(YC, XC)
    assert sum(days).xy_sum == pytest.approx(whole.xy_sum)
    c, t = stats.cuped(sum(days), stats.CovariateMean.from_values(YT, XT))
    adjusted = stats.compare(c, t)
    assert adjusted.se < 0.6 * plain.se
    assert c.unadjusted_mean == pytest.approx(YC.mean())


def test_cuped_grouped_and_proportion_kind():
    y = RNG.integers(0, 2, 1700).astype(float)
    x = np.clip(y + RNG.integers(-1, 1, 1700), 0, 1)
    g = np.r_[np.zeros(800, int), np.ones(900, int)]
    grouped = stats.CovariateMean.from_groups(y, x, g)
    c, t = stats.cuped(grouped[0], grouped[1], kind="proportion")
    assert stats.compare(c, t).method == "z"
    plain = stats.compare(stats.Proportion.from_values(y[:800]), stats.Proportion.from_values(y[800:]))
    assert stats.compare(c, t).se < plain.se


def test_cuped_misuse():
    with pytest.raises(StatsError, match="`control` must be a CovariateMean"):
        stats.cuped(stats.SampleMean(3, 3, 5), stats.CovariateMean(3, 1, 1, 1, 1, 1))
    with pytest.raises(StatsError, match="`kind` must be 'mean' or 'proportion'"):
        stats.cuped_from_arrays(YC, XC, YT, XT, kind="ratio")
    with pytest.raises(StatsError, match="mismatched lengths: `y` has 800, `x` has 900"):
        stats.cuped_from_arrays(YC, XT, YT, XT)


def test_bayes_summary_matches_numerical_integration():
    c, t = stats.Proportion(1000, 100), stats.Proportion(1100, 140)
    res = stats.bayes_summary(c, t)
    ref = stats.compare(c, t)
    post = sps.norm(ref.effect, ref.se)
    assert res.method == "gaussian-approximation"
    assert res.chance_to_beat_control == pytest.approx(post.sf(0), rel=1e-10)
    assert res.expected_loss == pytest.approx(post.expect(lambda d: max(-d, 0.0)), rel=1e-6)
    assert res.expected_loss_control == pytest.approx(post.expect(lambda d: max(d, 0.0)), rel=1e-6)
    assert round(res.chance_to_beat_control, 6) == 0.975781
    lower = stats.bayes_summary(c, t, higher_is_better=False)
    assert lower.chance_to_beat_control == pytest.approx(1 - res.chance_to_beat_control)
    assert lower.expected_loss == pytest.approx(res.expected_loss_control)


def test_bayes_summary_degenerate_and_vectorised():
    res = stats.bayes_summary(stats.SampleMean(1, 1, 1), stats.SampleMean(5, 5, 9))
    assert res.reason == "too_few_units" and np.isnan(res.chance_to_beat_control)
    vec = stats.bayes_summary(
        stats.Proportion([100, 200], [10, 30]), stats.Proportion([100, 200], [12, 20]), relative=True
    )
    assert vec.chance_to_beat_control.shape == (2,)
    assert vec.chance_to_beat_control[0] > 0.5 > vec.chance_to_beat_control[1]
