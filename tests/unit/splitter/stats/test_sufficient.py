"""Sufficient statistics: properties, combination with `+`, constructors, misuse."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from tritonab.errors import StatsError
from tritonab.splitter import stats

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


def _fields(stat):
    return [float(getattr(stat, f.name)) for f in dataclasses.fields(stat)]


def test_sample_mean_properties_match_numpy():
    x = np.array([1.0, 2.0, 4.0, 8.0])
    s = stats.SampleMean.from_values(x)
    assert (s.n, s.sum, s.sum_squares) == (4, 15.0, 85.0)
    assert s.mean == pytest.approx(np.mean(x))
    assert s.variance == pytest.approx(np.var(x, ddof=1))


def test_proportion_and_ratio_properties():
    p = stats.Proportion.from_values(np.array([True, False, True, True]))
    assert p.mean == 0.75 and p.variance == pytest.approx(0.1875)
    m, d = np.array([3.0, 0.0, 5.0, 2.0]), np.array([1.0, 2.0, 2.0, 1.0])
    r = stats.Ratio.from_values(m, d)
    assert r.mean == pytest.approx(10 / 6)
    # delta method by hand: var_m/d^2 - 2 cov m/d^3 + m^2 var_d/d^4 with per-unit means
    mm, dm = m.mean(), d.mean()
    vm, vd, cov = m.var(ddof=1), d.var(ddof=1), np.cov(m, d)[0, 1]
    expected = vm / dm**2 - 2 * cov * mm / dm**3 + mm**2 * vd / dm**4
    assert r.variance == pytest.approx(expected)


def test_degenerate_properties_are_nan():
    assert np.isnan(stats.SampleMean(0, 0, 0).mean)
    assert np.isnan(stats.SampleMean(1, 2, 4).variance)
    assert np.isnan(stats.Ratio(3, 1, 1, 0, 0, 0).mean)


def test_sum_and_zero_plus():
    days = [stats.Proportion(100, 10), stats.Proportion(200, 30), stats.Proportion(50, 5)]
    total = sum(days)
    assert (total.n, total.successes) == (350, 45)
    assert (0 + days[0]) is days[0]


def test_adding_different_kinds_raises():
    with pytest.raises(StatsError, match="cannot add `Proportion` to `SampleMean`"):
        stats.SampleMean(1, 1, 1) + stats.Proportion(1, 1)


def test_from_groups_matches_per_group_from_values():
    rng = np.random.default_rng(0)
    x, g = rng.normal(size=1000), rng.integers(0, 3, 1000)
    grouped = stats.SampleMean.from_groups(x, g)
    assert grouped.shape == (3,) and len(grouped) == 3
    for k in range(3):
        one = stats.SampleMean.from_values(x[g == k])
        np.testing.assert_allclose(_fields(grouped[k]), _fields(one), rtol=1e-12)
    conv = rng.integers(0, 2, 1000)
    np.testing.assert_allclose(
        stats.Proportion.from_groups(conv, g, n_groups=4).successes,
        np.append(np.bincount(g, weights=conv), 0),
    )
    d = rng.uniform(1, 2, 1000)
    r = stats.Ratio.from_groups(x, d, g)
    np.testing.assert_allclose(r[1].mean, x[g == 1].sum() / d[g == 1].sum())


@settings(max_examples=60, deadline=None)
@given(
    arrays(np.float64, st.integers(0, 30), elements=finite),
    arrays(np.float64, st.integers(0, 30), elements=finite),
)
def test_adding_statistics_equals_concatenating_data(a, b):
    joint = stats.SampleMean.from_values(np.concatenate([a, b]))
    parts = stats.SampleMean.from_values(a) + stats.SampleMean.from_values(b)
    np.testing.assert_allclose(_fields(parts), _fields(joint), rtol=1e-9, atol=1e-6)
    ra = stats.Ratio.from_values(a, np.abs(a) + 1)
    rb = stats.Ratio.from_values(b, np.abs(b) + 1)
    rj = stats.Ratio.from_values(np.concatenate([a, b]), np.abs(np.concatenate([a, b])) + 1)
    np.testing.assert_allclose(_fields(ra + rb), _fields(rj), rtol=1e-9, atol=1e-6)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 500), st.integers(0, 500)), min_size=1, max_size=8))
def test_sum_of_days_equals_array_sum(days):
    props = [stats.Proportion(n + s, s) for n, s in days]
    vec = stats.Proportion([n + s for n, s in days], [s for _, s in days])
    total = sum(props)
    assert total.n == vec.n.sum() and total.successes == vec.successes.sum()


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: stats.SampleMean(-1, 0, 0), r"`n` must be >= 0"),
        (lambda: stats.SampleMean(2, 1, -1), r"`sum_squares` must be >= 0"),
        (lambda: stats.SampleMean(2, float("nan"), 1), r"`sum` must not contain NaN"),
        (lambda: stats.SampleMean(2, "x", 1), r"`sum` must be numeric"),
        (lambda: stats.SampleMean([1, 2], [1, 2, 3], 1), r"mismatched lengths"),
        (lambda: stats.Proportion(5, 6), r"`successes` must be <= `n`"),
        (lambda: stats.Proportion(5, -1), r"`successes` must be >= 0"),
        (lambda: stats.Proportion.from_values([0, 1, 2]), r"`values` must be 0 or 1"),
        (lambda: stats.SampleMean.from_values([[1.0]]), r"`values` must be 1-D"),
        (lambda: stats.Ratio.from_values([1.0], [1.0, 2.0]), r"mismatched lengths: `numerator`"),
        (lambda: stats.SampleMean.from_groups([1.0, 2.0], [0]), r"`groups` must be 1-D with 2"),
        (lambda: stats.SampleMean.from_groups([1.0], [-1]), r"`groups` must be >= 0"),
        (lambda: stats.SampleMean.from_groups([1.0], [0.5]), r"`groups` must hold integer"),
        (lambda: stats.SampleMean.from_groups([1.0], [3], n_groups=2), r"`n_groups` is 2"),
    ],
)
def test_misuse_raises(build, match):
    with pytest.raises(StatsError, match=match):
        build()
