"""Asymptotic confidence sequences: gbstats golden values and validity under peeking."""

import numpy as np
import pytest
from gbstats.frequentist.tests import SequentialConfig, SequentialTwoSidedTTest
from gbstats.models.statistics import ProportionStatistic, SampleMeanStatistic

from tritonab.splitter import stats


@pytest.mark.parametrize(
    ("relative", "tuning", "alpha"),
    [(False, 5000, 0.05), (True, 5000, 0.05), (False, 200, 0.1), (True, 100_000, 0.01)],
)
def test_matches_gbstats_sequential(relative, tuning, alpha):
    a = stats.SampleMean(2000, 20_000.0, 260_000.0)
    b = stats.SampleMean(2100, 21_630.0, 280_000.0)
    res = stats.compare(a, b, relative=relative, alpha=alpha, sequential_tuning=tuning)
    cfg = SequentialConfig(
        sequential_tuning_parameter=tuning,
        alpha=alpha,
        difference_type="relative" if relative else "absolute",
    )
    ref = SequentialTwoSidedTTest(
        SampleMeanStatistic(n=2000, sum=20_000.0, sum_squares=260_000.0),
        SampleMeanStatistic(n=2100, sum=21_630.0, sum_squares=280_000.0),
        cfg,
    ).compute_result()
    assert res.method == "sequential-cs" + ("-delta" if relative else "")
    assert res.effect == pytest.approx(ref.expected, abs=1e-12)
    assert [res.ci_low, res.ci_high] == pytest.approx(ref.ci, rel=1e-10)
    assert res.p_value == pytest.approx(ref.p_value, rel=1e-10)


def test_golden_proportion_sequence():
    """Pinned values (gbstats 0.8.0 SequentialTwoSidedTTest, N* = 5000)."""
    res = stats.compare(stats.Proportion(1000, 100), stats.Proportion(1100, 140), sequential_tuning=5000)
    ref = SequentialTwoSidedTTest(
        ProportionStatistic(n=1000, sum=100),
        ProportionStatistic(n=1100, sum=140),
        SequentialConfig(sequential_tuning_parameter=5000, difference_type="absolute"),
    ).compute_result()
    assert round(res.ci_low, 8) == round(ref.ci[0], 8) == -0.01575699
    assert round(res.ci_high, 8) == 0.07030245
    assert round(res.p_value, 6) == 0.465425


def test_sequence_is_wider_than_fixed_interval_and_p_consistent():
    a, b = stats.Proportion(5000, 500), stats.Proportion(5000, 570)
    fixed = stats.compare(a, b)
    seq = stats.compare(a, b, sequential_tuning=10_000)
    assert seq.ci_low < fixed.ci_low and seq.ci_high > fixed.ci_high
    assert seq.p_value >= fixed.p_value
    # p < alpha exactly when 0 is outside the sequence
    n = np.arange(100, 20_000, 50)
    grid = stats.compare(
        stats.Proportion(n, 0.1 * n), stats.Proportion(n, 0.115 * n), sequential_tuning=10_000
    )
    assert np.array_equal(grid.p_value < 0.05, grid.ci_low > 0)


def test_peeking_fixed_inflates_sequential_holds():
    """A/A tests watched 20 times: fixed-horizon false positives exceed alpha, the CS's do not."""
    rng = np.random.default_rng(11)
    runs, peeks, batch, p = 3000, 20, 500, 0.1
    succ = rng.binomial(batch, p, (2, runs, peeks)).cumsum(axis=2)
    n = batch * np.arange(1, peeks + 1)
    c, t = stats.Proportion(n, succ[0]), stats.Proportion(n, succ[1])
    fixed = stats.compare(c, t).p_value < 0.05
    seq = stats.compare(c, t, sequential_tuning=2 * batch * peeks).p_value < 0.05
    fixed_fpr, seq_fpr = fixed.any(axis=1).mean(), seq.any(axis=1).mean()
    assert fixed_fpr > 0.12  # about 0.2 in theory for 20 looks
    assert seq_fpr <= 0.05


def test_public_helpers_agree_with_compare():
    res = stats.compare(stats.Proportion(1000, 100), stats.Proportion(1100, 140), sequential_tuning=5000)
    width = stats.sequential_half_width(res.se, 2100, 0.05, 5000)
    assert res.ci_high - res.effect == pytest.approx(float(width))
    assert float(stats.sequential_p_value(res.effect / res.se, 2100, 0.05, 5000)) == pytest.approx(
        res.p_value
    )
