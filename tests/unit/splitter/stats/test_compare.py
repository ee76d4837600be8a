"""Fixed-horizon comparisons against scipy, statsmodels and gbstats; degenerate data; misuse."""

import numpy as np
import pytest
from gbstats.frequentist.tests import FrequentistConfig, TwoSidedTTest
from gbstats.models.statistics import RatioStatistic, SampleMeanStatistic
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from statsmodels.stats import proportion as smp

from tritonab.errors import StatsError
from tritonab.splitter import stats

RNG = np.random.default_rng(20240601)
A, B = RNG.normal(10.0, 2.0, 50), RNG.normal(10.8, 3.0, 70)


def _means():
    return stats.SampleMean.from_values(A), stats.SampleMean.from_values(B)


@pytest.mark.parametrize("alternative", ["two-sided", "greater", "less"])
def test_welch_matches_scipy(alternative):
    res = stats.compare(*_means(), alternative=alternative, alpha=0.1)
    ref = sps.ttest_ind(B, A, equal_var=False, alternative=alternative)
    ci = ref.confidence_interval(0.9)
    assert res.method == "welch-t" and res.reason is None
    assert res.p_value == pytest.approx(ref.pvalue, abs=1e-10)
    assert res.effect == pytest.approx(B.mean() - A.mean(), abs=1e-12)
    assert res.ci_low == pytest.approx(ci.low, abs=1e-10)
    assert res.ci_high == pytest.approx(ci.high, abs=1e-10)
    assert res.df == pytest.approx(ref.df, abs=1e-8)


def test_welch_golden_value():
    """Pinned from scipy.stats.ttest_ind(b, a, equal_var=False) on this data."""
    a = stats.SampleMean.from_values([19.8, 20.4, 19.6, 17.8, 18.5, 18.9, 18.3, 18.9, 19.5, 22.0])
    b = stats.SampleMean.from_values(
        [
            28.2,
            26.6,
            20.1,
            23.3,
            25.2,
            22.1,
            17.7,
            27.6,
            20.6,
            13.7,
            23.2,
            17.5,
            20.6,
            18.0,
            23.9,
            21.6,
            24.3,
            20.4,
            23.9,
            13.3,
        ]
    )
    res = stats.compare(a, b)
    assert round(res.effect, 6) == 2.22
    assert round(res.p_value, 6) == 0.035485
    assert round(res.df, 6) == 24.524635
    assert (round(res.ci_low, 6), round(res.ci_high, 6)) == (0.163541, 4.276459)


def test_proportion_wald_matches_statsmodels():
    res = stats.compare(stats.Proportion(1000, 100), stats.Proportion(1100, 140))
    ref = smp.test_proportions_2indep(140, 1100, 100, 1000, method="wald", compare="diff")
    low, high = smp.confint_proportions_2indep(140, 1100, 100, 1000, method="wald", compare="diff")
    assert res.method == "z" and np.isinf(res.df)
    assert round(res.p_value, 8) == round(ref.pvalue, 8)
    assert round(res.ci_low, 8) == round(low, 8) and round(res.ci_high, 8) == round(high, 8)


def _gb(stat):
    return SampleMeanStatistic(n=int(stat.n), sum=stat.sum, sum_squares=stat.sum_squares)


def test_relative_lift_matches_gbstats_delta_method():
    a, b = _means()
    res = stats.compare(a, b, relative=True)
    ref = TwoSidedTTest(_gb(a), _gb(b), FrequentistConfig(difference_type="relative")).compute_result()
    assert res.method == "welch-t-delta"
    assert res.effect == pytest.approx(ref.expected, abs=1e-12)
    assert res.se == pytest.approx(ref.uplift.stddev, abs=1e-12)
    assert [res.ci_low, res.ci_high] == pytest.approx(ref.ci, abs=1e-10)
    assert res.p_value == pytest.approx(ref.p_value, abs=1e-10)


def test_ratio_delta_method_matches_gbstats():
    m, d = RNG.gamma(2.0, 3.0, 400), RNG.poisson(3.0, 400) + 1.0
    m2, d2 = RNG.gamma(2.0, 3.3, 420), RNG.poisson(3.0, 420) + 1.0
    a, b = stats.Ratio.from_values(m, d), stats.Ratio.from_values(m2, d2)

    def gb(r):
        return RatioStatistic(
            n=int(r.n),
            m_statistic=SampleMeanStatistic(n=int(r.n), sum=r.num_sum, sum_squares=r.num_sum_squares),
            d_statistic=SampleMeanStatistic(n=int(r.n), sum=r.den_sum, sum_squares=r.den_sum_squares),
            m_d_sum_of_products=r.num_den_sum,
        )

    for relative in (False, True):
        res = stats.compare(a, b, relative=relative)
        ref = TwoSidedTTest(
            gb(a), gb(b), FrequentistConfig(difference_type="relative" if relative else "absolute")
        ).compute_result()
        assert res.effect == pytest.approx(ref.expected, abs=1e-12)
        assert res.se == pytest.approx(ref.uplift.stddev, rel=1e-10)


@pytest.mark.parametrize(
    ("control", "treatment", "relative", "reason"),
    [
        (stats.SampleMean(1, 5, 25), stats.SampleMean(10, 50, 300), False, "too_few_units"),
        (stats.SampleMean(10, 50, 250), stats.SampleMean(10, 60, 360), False, "zero_variance"),
        (stats.Proportion(100, 0), stats.Proportion(100, 5), True, "zero_baseline"),
        (stats.Proportion(100, 0), stats.Proportion(100, 0), False, "zero_variance"),
    ],
)
def test_degenerate_data_carries_reason_and_no_p_value(control, treatment, relative, reason):
    res = stats.compare(control, treatment, relative=relative)
    assert res.reason == reason and res.p_value is None and res.significant is False
    assert np.isnan(res.ci_low) and np.isnan(res.se)


def test_vectorised_equals_loop():
    n = RNG.integers(2, 500, (2, 300)).astype(float)
    s = RNG.normal(0, 1, (2, 300)) * n
    ss = s**2 / n + RNG.uniform(0.5, 2.0, (2, 300)) * (n - 1)
    ss[0, 7], s[0, 7] = 4.0, 2.0 * n[0, 7] ** 0.5  # zero variance at index 7 in control
    ss[1, 7], s[1, 7] = 9.0, 3.0 * n[1, 7] ** 0.5
    ss[0, 7], ss[1, 7] = s[0, 7] ** 2 / n[0, 7], s[1, 7] ** 2 / n[1, 7]
    c, t = stats.SampleMean(n[0], s[0], ss[0]), stats.SampleMean(n[1], s[1], ss[1])
    for kwargs in ({}, {"relative": True}, {"sequential_tuning": 400.0}):
        vec = stats.compare(c, t, **kwargs)
        assert vec.reason[7] == "zero_variance" and np.isnan(vec.p_value[7])
        for i in (0, 1, 150, 299):
            one = stats.compare(c[i], t[i], **kwargs)
            assert vec.p_value[i] == pytest.approx(one.p_value, rel=1e-12)
            assert vec.ci_low[i] == pytest.approx(one.ci_low, rel=1e-12)
        assert vec.significant.dtype == bool


def test_null_p_values_are_uniform():
    """20,000 A/A tests on normal data (exact sufficient statistics): KS against U(0, 1)."""
    rng = np.random.default_rng(7)
    m, n = 20_000, np.array([[30], [45]])
    sums = rng.normal(0.0, 2.0 * np.sqrt(n), (2, m)) + 3.0 * n
    var = rng.chisquare(n - 1, (2, m)) / (n - 1) * 4.0
    sq = var * (n - 1) + sums**2 / n
    res = stats.compare(stats.SampleMean(n[0], sums[0], sq[0]), stats.SampleMean(n[1], sums[1], sq[1]))
    assert sps.kstest(res.p_value, "uniform").pvalue > 0.001
    props = stats.compare(
        stats.Proportion(4000, rng.binomial(4000, 0.2, m)), stats.Proportion(5000, rng.binomial(5000, 0.2, m))
    )
    assert sps.kstest(props.p_value, "uniform").pvalue > 0.001


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 3), st.integers(5, 200))
def test_split_data_gives_same_comparison(cut, size):
    x = np.random.default_rng(size).normal(0, 1, size + 10)
    parts = stats.SampleMean.from_values(x[: cut + 3]) + stats.SampleMean.from_values(x[cut + 3 :])
    whole = stats.SampleMean.from_values(x)
    ref = stats.SampleMean.from_values(x[::2])
    assert stats.compare(ref, parts).p_value == pytest.approx(stats.compare(ref, whole).p_value)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"alpha": 1.5}, r"`alpha` must be in \(0, 1\)"),
        ({"alternative": "bigger"}, r"`alternative` must be one of"),
        ({"sequential_tuning": -5}, r"`sequential_tuning` must be > 0"),
        ({"sequential_tuning": "x"}, r"`sequential_tuning` must be a number"),
        ({"sequential_tuning": 100, "alternative": "greater"}, r"'two-sided' with `sequential"),
    ],
)
def test_compare_misuse(kwargs, match):
    with pytest.raises(StatsError, match=match):
        stats.compare(*_means(), **kwargs)


def test_compare_rejects_mixed_kinds_and_shapes():
    with pytest.raises(StatsError, match="`control` is a mean statistic but `treatment` is a"):
        stats.compare(stats.SampleMean(5, 5, 9), stats.Proportion(5, 1))
    with pytest.raises(StatsError, match="`treatment` must be a SampleMean"):
        stats.compare(stats.SampleMean(5, 5, 9), 3.0)
    with pytest.raises(StatsError, match="mismatched lengths"):
        stats.compare(stats.Proportion([5, 6], [1, 2]), stats.Proportion([5, 6, 7], [1, 2, 3]))
