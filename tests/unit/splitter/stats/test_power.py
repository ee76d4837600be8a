"""Sample size and MDE: the reference value, statsmodels for means, round trips, misuse."""

import math

import pytest
from statsmodels.stats.power import NormalIndPower

from tritonab.errors import StatsError
from tritonab.splitter import stats


def test_reference_value_proportion():
    assert stats.sample_size("proportion", baseline=0.10, mde=0.02) == 3841
    assert stats.sample_size("proportion", baseline=0.10, mde=0.2, relative=True) == 3841


def test_proportion_formula_by_hand_with_unequal_allocation():
    z_a, z_b, p1, p2, k = 1.959963984540054, 0.8416212335729143, 0.2, 0.17, 2.0
    pbar = (p1 + k * p2) / (1 + k)
    n = (
        z_a * math.sqrt(pbar * (1 - pbar) * (1 + 1 / k)) + z_b * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2) / k)
    ) ** 2 / 0.03**2
    assert stats.sample_size("proportion", baseline=0.2, mde=-0.03, ratio=2.0) == math.ceil(n)


@pytest.mark.parametrize(("ratio", "alternative"), [(1.0, "two-sided"), (2.5, "two-sided"), (0.5, "greater")])
def test_means_match_statsmodels(ratio, alternative):
    alt = "two-sided" if alternative == "two-sided" else "larger"
    ref = NormalIndPower().solve_power(
        effect_size=0.5 / 4.0, alpha=0.05, power=0.9, ratio=ratio, alternative=alt
    )
    n = stats.sample_size(
        "mean", baseline=10.0, mde=0.5, sd=4.0, power=0.9, ratio=ratio, alternative=alternative
    )
    assert n == math.ceil(ref)
    eff = stats.mde("mean", baseline=10.0, n=ref, sd=4.0, power=0.9, ratio=ratio, alternative=alternative)
    assert round(eff, 5) == 0.5  # statsmodels also counts the far tail: ~1e-7 apart


def test_mde_inverts_sample_size_for_proportions():
    d = stats.mde("proportion", baseline=0.1, n=3840.3)
    assert round(d, 4) == 0.02
    rel = stats.mde("proportion", baseline=0.1, n=3840.3, relative=True)
    assert round(rel, 3) == 0.2


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: stats.sample_size("rate", baseline=0.1, mde=0.1), r"`kind` must be"),
        (lambda: stats.sample_size("proportion", baseline=1.2, mde=0.1), r"`baseline` must be in"),
        (lambda: stats.sample_size("proportion", baseline=0.9, mde=0.2), r"outside \(0, 1\)"),
        (lambda: stats.sample_size("proportion", baseline=0.1, mde=0.0), r"`mde` must be a non-zero"),
        (lambda: stats.sample_size("mean", baseline=1.0, mde=0.1), r"`sd` must be > 0"),
        (lambda: stats.sample_size("mean", baseline=1, mde=1, sd=1, power=1.0), r"`power` must be"),
        (lambda: stats.sample_size("mean", baseline=1, mde=1, sd=1, ratio=0), r"`ratio` must be > 0"),
        (lambda: stats.sample_size("mean", baseline=1, mde=1, sd=1, alpha=0), r"`alpha` must be"),
        (lambda: stats.mde("mean", baseline=1.0, n=0, sd=1.0), r"`n` must be > 0"),
        (lambda: stats.mde("mean", baseline=0.0, n=10, sd=1.0, relative=True), r"`baseline` must be"),
        (lambda: stats.mde("proportion", baseline=0.5, n=2), r"`n` = 2 is too small"),
    ],
)
def test_power_misuse(call, match):
    with pytest.raises(StatsError, match=match):
        call()
