"""Stratified comparison: one stratum is the plain z-test; strata with drifting rates and
changing shares do not fool it (Simpson's paradox); figures against a hand computation."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

from tritonab.errors import StatsError
from tritonab.splitter import stats


def test_one_stratum_is_the_unstratified_z_test():
    c, t = stats.Proportion([2000], [200]), stats.Proportion([1800], [225])
    strat, plain = stats.stratified_compare(c, t), stats.compare(c[0], t[0])
    for name in ("effect", "se", "ci_low", "ci_high", "p_value", "control_mean", "treatment_mean"):
        assert getattr(strat, name) == pytest.approx(getattr(plain, name), rel=1e-12)
    assert strat.method == "stratified-z" and strat.test == "fixed: z, stratified"


def test_changing_shares_over_drifting_periods_do_not_fool_it():
    # Both arms convert alike within each period (10% then 30%), but the treatment got
    # most of its units in the second period: pooled, it looks 16 points better.
    control = stats.Proportion([900, 100], [90, 30])
    treatment = stats.Proportion([100, 900], [10, 270])
    pooled = stats.compare(control[0] + control[1], treatment[0] + treatment[1])
    assert pooled.effect == pytest.approx(0.16) and pooled.p_value < 1e-10
    strat = stats.stratified_compare(control, treatment)
    assert strat.effect == pytest.approx(0.0, abs=1e-12) and strat.p_value == pytest.approx(1.0)


def test_figures_against_a_hand_computation():
    control = stats.SampleMean(n=[50, 80, 30], sum=[100.0, 200.0, 45.0], sum_squares=[260.0, 580.0, 90.0])
    treatment = stats.SampleMean(n=[40, 120, 10], sum=[92.0, 330.0, 18.0], sum_squares=[250.0, 1000.0, 40.0])
    result = stats.stratified_compare(control, treatment, alpha=0.1)
    n_c, n_t = np.array([50, 80, 30]), np.array([40, 120, 10])
    mean_c, mean_t = np.array([100, 200, 45]) / n_c, np.array([92, 330, 18]) / n_t
    var_c = (np.array([260, 580, 90]) - np.array([100, 200, 45]) ** 2 / n_c) / (n_c - 1)
    var_t = (np.array([250, 1000, 40]) - np.array([92, 330, 18]) ** 2 / n_t) / (n_t - 1)
    w = (n_c + n_t) / (n_c + n_t).sum()
    effect = float(w @ (mean_t - mean_c))
    se = math.sqrt(float(w**2 @ (var_t / n_t + var_c / n_c)))
    assert result.effect == pytest.approx(effect, rel=1e-12)
    assert result.se == pytest.approx(se, rel=1e-12)
    assert result.p_value == pytest.approx(2 * sps.norm.sf(abs(effect / se)), rel=1e-9)
    assert result.ci_low == pytest.approx(effect - sps.norm.ppf(0.95) * se, rel=1e-9)
    relative = stats.stratified_compare(control, treatment, relative=True)
    big_c, big_t = float(w @ mean_c), float(w @ mean_t)
    assert relative.effect == pytest.approx(big_t / big_c - 1, rel=1e-12)
    var_big_c, var_big_t = float(w**2 @ (var_c / n_c)), float(w**2 @ (var_t / n_t))
    assert relative.se == pytest.approx(
        math.sqrt(var_big_t / big_c**2 + big_t**2 * var_big_c / big_c**4), rel=1e-9
    )


def test_thin_strata_are_left_out_and_none_left_is_a_reason():
    control = stats.Proportion([1000, 1, 0], [100, 1, 0])
    treatment = stats.Proportion([1000, 5, 3], [120, 0, 1])
    with_thin = stats.stratified_compare(control, treatment)
    alone = stats.stratified_compare(control[:1], treatment[:1])
    assert with_thin.effect == alone.effect and with_thin.control_n == 1000
    empty = stats.stratified_compare(stats.Proportion([1, 0], [0, 0]), stats.Proportion([5, 1], [1, 0]))
    assert empty.reason == "too_few_units" and empty.p_value is None


def test_misuse_raises():
    with pytest.raises(StatsError, match=r"`control` is a proportion statistic but `treatment` is a mean"):
        stats.stratified_compare(stats.Proportion([10], [1]), stats.SampleMean([10], [1.0], [1.0]))
    with pytest.raises(StatsError, match=r"mismatched strata: `control` has 2, `treatment` has 3"):
        stats.stratified_compare(
            stats.Proportion([10, 10], [1, 1]), stats.Proportion([10, 10, 10], [1, 1, 1])
        )


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(2, 500), st.integers(2, 500), st.floats(0.01, 0.99), st.floats(0.01, 0.99)),
        min_size=1,
        max_size=6,
    ),
    st.randoms(use_true_random=False),
)
def test_the_order_of_strata_does_not_matter(strata, random):
    n_c = np.array([s[0] for s in strata], dtype=float)
    n_t = np.array([s[1] for s in strata], dtype=float)
    s_c = np.round(n_c * [s[2] for s in strata])
    s_t = np.round(n_t * [s[3] for s in strata])
    order = list(range(len(strata)))
    random.shuffle(order)
    a = stats.stratified_compare(stats.Proportion(n_c, s_c), stats.Proportion(n_t, s_t))
    b = stats.stratified_compare(
        stats.Proportion(n_c[order], s_c[order]), stats.Proportion(n_t[order], s_t[order])
    )
    assert a.effect == pytest.approx(b.effect, abs=1e-12)
    assert (a.p_value is None) == (b.p_value is None)
    if a.p_value is not None:
        assert a.p_value == pytest.approx(b.p_value, abs=1e-9)
