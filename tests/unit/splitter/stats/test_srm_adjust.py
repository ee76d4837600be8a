"""SRM chi-square against configured weights; Holm/BH adjustment in input order."""

import numpy as np
import pytest
from scipy import stats as sps
from statsmodels.stats.multitest import multipletests

from tritonab.errors import StatsError
from tritonab.splitter import stats


def test_srm_matches_scipy_chisquare_with_unequal_weights():
    counts, weights = [8_900, 1_100], [0.9, 0.1]
    res = stats.srm(counts, weights)
    ref = sps.chisquare(counts, f_exp=[9000, 1000])
    assert res.chi2 == pytest.approx(ref.statistic) and res.p_value == pytest.approx(ref.pvalue)
    assert round(res.chi2, 6) == 11.111111 and res.srm_detected is True
    assert res.expected.tolist() == [9000.0, 1000.0]


def test_srm_is_not_a_fifty_fifty_assumption():
    assert not stats.srm([9_010, 990], [0.9, 0.1]).srm_detected
    assert stats.srm([9_010, 990], [0.5, 0.5]).srm_detected


def test_srm_vectorised_over_days_and_empty_day():
    counts = np.array([[500, 510, 490], [0, 0, 0], [700, 500, 300]])
    res = stats.srm(counts, [0.4, 0.4, 0.2])
    assert res.reason.tolist() == ["", "no_units", ""]
    assert np.isnan(res.p_value[1]) and res.srm_detected.tolist() == [True, False, True]
    assert res.p_value[0] == pytest.approx(stats.srm(counts[0], [0.4, 0.4, 0.2]).p_value)
    empty = stats.srm([0, 0], [0.5, 0.5])
    assert empty.p_value is None and empty.reason == "no_units"


@pytest.mark.parametrize(
    ("counts", "weights", "match"),
    [
        ([10, -1], [0.5, 0.5], r"`counts` must be >= 0"),
        ([10, 10], [0.5, 0.6], r"`weights` must sum to 1"),
        ([10, 10, 10], [0.5, 0.5], r"mismatched lengths: `counts` has 3 variants, `weights` has 2"),
        ([10], [1.0], r"`counts` needs at least 2 variants"),
        ([10, 10], [1.0, 0.0], r"`weights` must all be > 0"),
    ],
)
def test_srm_misuse(counts, weights, match):
    with pytest.raises(StatsError, match=match):
        stats.srm(counts, weights)


def test_adjust_hand_computed_and_statsmodels():
    p = [0.01, 0.04, 0.03, 0.005]
    np.testing.assert_allclose(stats.adjust(p, "holm"), [0.03, 0.06, 0.06, 0.02])
    np.testing.assert_allclose(stats.adjust(p, "bh"), [0.02, 0.04, 0.04, 0.02])
    rng = np.random.default_rng(3)
    q = rng.uniform(0, 0.2, 25)
    np.testing.assert_allclose(stats.adjust(q, "bh"), multipletests(q, method="fdr_bh")[1])


def test_adjust_skips_degenerate_entries():
    out = stats.adjust([0.01, None, 0.04, float("nan")], "holm")
    np.testing.assert_allclose(out, [0.02, np.nan, 0.04, np.nan])


@pytest.mark.parametrize(
    ("p", "method", "match"),
    [
        ([0.1, 1.2], "holm", r"`p_values` must be in \[0, 1\]"),
        ([0.1], "bonferroni", r"`method` must be 'holm' or 'bh'"),
        ([[0.1]], "holm", r"`p_values` must be 1-D"),
        (["a"], "holm", r"`p_values` must be numbers"),
    ],
)
def test_adjust_misuse(p, method, match):
    with pytest.raises(StatsError, match=match):
        stats.adjust(p, method)
