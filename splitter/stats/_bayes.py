r"""Bayesian summary under a Gaussian approximation (flat prior, normal likelihood).

The effect delta (absolute, or relative via the delta method) is approximated as
delta ~ Normal(mu, s^2), with mu and s the point estimate and standard error that
`compare` computes. Then

    chance to beat control   P(delta > 0) = Phi(mu / s)
    expected loss (ship)     E[max(-delta, 0)] = s phi(mu/s) - mu Phi(-mu/s)
    expected loss (keep)     E[max(delta, 0)]  = s phi(mu/s) + mu Phi(mu/s)

This is an approximation, not a conjugate posterior: it is accurate for large samples and
labelled `method="gaussian-approximation"` on every result.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from tritonab.splitter.stats import _validate as v
from tritonab.splitter.stats._compare import Statistic, compare
from tritonab.splitter.stats._validate import FloatOrArray, Reason


@dataclasses.dataclass(frozen=True, eq=False)
class BayesSummary:
    """Gaussian-approximation summary of treatment vs control (scalars or arrays).

    Attributes:
        chance_to_beat_control: P(effect > 0), or P(effect < 0) when lower is better.
        expected_loss: expected shortfall from shipping treatment, on the effect's scale
            (in the "better" direction).
        expected_loss_control: expected shortfall from keeping control.
        effect, se: the Gaussian's mean and standard deviation.
        ci_low, ci_high: central (1 - alpha) credible interval.
        relative: whether the effect is a relative lift.
        method: always "gaussian-approximation".
        reason: as in ComparisonResult; degenerate entries carry NaN summaries.
    """

    chance_to_beat_control: FloatOrArray
    expected_loss: FloatOrArray
    expected_loss_control: FloatOrArray
    effect: FloatOrArray
    se: FloatOrArray
    ci_low: FloatOrArray
    ci_high: FloatOrArray
    relative: bool
    method: str
    reason: Reason


def bayes_summary(
    control: Statistic,
    treatment: Statistic,
    *,
    relative: bool = False,
    higher_is_better: bool = True,
    alpha: float = 0.05,
) -> BayesSummary:
    """Chance to beat control and expected loss, under a Gaussian approximation.

    Args:
        control: control statistic (SampleMean, Proportion, Ratio, AdjustedMean).
        treatment: treatment statistic of the same kind.
        relative: summarise the relative lift instead of the difference.
        higher_is_better: False for metrics where a decrease is the improvement.
        alpha: the credible interval covers 1 - alpha.

    Returns:
        A BayesSummary with method="gaussian-approximation".

    Raises:
        StatsError: as `compare`.
    """
    res = compare(control, treatment, relative=relative, alpha=alpha)
    mu = np.asarray(res.effect, dtype=np.float64)
    s = np.asarray(res.se, dtype=np.float64)
    gain = mu if higher_is_better else -mu
    with np.errstate(divide="ignore", invalid="ignore"):
        z = gain / s
        pdf = np.exp(-0.5 * z**2) / np.sqrt(2.0 * np.pi)
        chance = special.ndtr(z)
        loss_ship = s * pdf - gain * special.ndtr(-z)
        loss_keep = s * pdf + gain * special.ndtr(z)
        q = float(special.ndtri(1.0 - alpha / 2.0))

    def summary(x: ArrayLike) -> FloatOrArray:  # scipy is untyped: its results enter here as float64
        return v.scalar_or_array(np.asarray(x, dtype=np.float64))

    return BayesSummary(
        chance_to_beat_control=summary(chance),
        expected_loss=summary(loss_ship),
        expected_loss_control=summary(loss_keep),
        effect=summary(mu),
        se=summary(s),
        ci_low=summary(mu - q * s),
        ci_high=summary(mu + q * s),
        relative=relative,
        method="gaussian-approximation",
        reason=res.reason,
    )
