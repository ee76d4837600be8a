"""Stratified comparison: one effect from strata analysed apart (allocation periods, days).

When weights change during an experiment (a bandit, a ramp), pooling every unit into
one mean per arm compares arms that saw different mixes of periods: if the metric
drifts over time while an arm's share grows, the pooled difference is biased
(Simpson's paradox). The stratified estimate compares the arms within each stratum and
averages those differences with fixed weights, each stratum's share of units:

    effect = sum_s w_s (mean_t,s - mean_c,s),     w_s = (n_c,s + n_t,s) / N
    Var    = sum_s w_s^2 (var_t,s / n_t,s + var_c,s / n_c,s)

tested with a z statistic (strata are independent samples). The relative form uses
the standardised means `T = sum w_s mean_t,s`, `C = sum w_s mean_c,s` and the delta
method, `Var(T/C - 1) = Var(T)/C^2 + T^2 Var(C)/C^4`. Strata where an arm has fewer
than two units, or an undefined mean or variance, are left out.
"""

from __future__ import annotations

import numpy as np

from tritonab.errors import StatsError
from tritonab.splitter.stats import _validate as v
from tritonab.splitter.stats._compare import (
    ComparisonResult,
    Statistic,
    _arm,
    _check_pair,
    _fixed_bounds,
    _result,
)
from tritonab.splitter.stats._validate import Alternative, FloatArray


def _strata(stat: Statistic, name: str) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(mean, per-unit variance, n) per stratum, 1-D."""
    mean, var, n = _arm(stat, name)
    shape = np.broadcast_shapes(mean.shape, var.shape, n.shape)
    if len(shape) != 1:
        raise StatsError(f"`{name}` must hold one statistic per stratum (1-D), got shape {shape}")
    return tuple(np.broadcast_to(x, shape).astype(np.float64) for x in (mean, var, n))  # type: ignore[return-value]


def stratified_compare(
    control: Statistic,
    treatment: Statistic,
    *,
    relative: bool = False,
    alpha: float = 0.05,
    alternative: Alternative = "two-sided",
) -> ComparisonResult:
    """Compare two arms stratum by stratum, and combine the strata's differences.

    Args:
        control: a SampleMean, Proportion or Ratio whose fields hold one entry per stratum.
        treatment: a statistic of the same kind and length.
        relative: the lift T / C - 1 of the standardised means (delta method).
        alpha: significance level; the interval has coverage 1 - alpha.
        alternative: "two-sided", "greater" (treatment > control) or "less".

    Returns:
        A scalar `ComparisonResult` (method `stratified-z`, `-delta` when relative):
        `control_mean`/`treatment_mean` are the standardised means, `control_n`/
        `treatment_n` the units of the strata used. Reason `too_few_units` when no
        stratum has two units in each arm.

    Raises:
        StatsError: mismatched kinds or lengths, not 1-D, alpha outside (0, 1), an
            unknown alternative.
    """
    _check_pair(control, treatment)
    alpha = v.check_alpha(alpha)
    v.check_alternative(alternative)
    mc, vc, nc = _strata(control, "control")
    mt, vt, nt = _strata(treatment, "treatment")
    if mc.shape != mt.shape:
        raise StatsError(f"mismatched strata: `control` has {mc.size}, `treatment` has {mt.size}")
    with np.errstate(all="ignore"):
        keep = (nc >= 2) & (nt >= 2) & np.isfinite(mc + mt + vc + vt)
        used_c, used_t = float(nc[keep].sum()), float(nt[keep].sum())
        total = used_c + used_t
        w = (nc + nt)[keep] / total if total > 0 else np.zeros(0)
        big_c, big_t = float(w @ mc[keep]), float(w @ mt[keep])
        var_c = float(w**2 @ (vc[keep] / nc[keep]))
        var_t = float(w**2 @ (vt[keep] / nt[keep]))
        if relative:
            effect = big_t / big_c - 1.0
            var = var_t / big_c**2 + big_t**2 * var_c / big_c**4
        else:
            effect, var = big_t - big_c, var_t + var_c
        se = np.asarray(np.sqrt(var), dtype=np.float64)
        df = np.asarray(np.inf)
        low, high, p = _fixed_bounds(np.asarray(effect), se, df, alpha, alternative)
    reason = ""
    if not keep.any():
        reason = "too_few_units"
    elif relative and big_c == 0:
        reason = "zero_baseline"
    elif not np.isfinite(se) or se <= 0:
        reason = "zero_variance"
    return _result(
        np.asarray(effect, dtype=np.float64),
        low,
        high,
        p,
        se,
        (np.asarray(big_c), np.asarray(var_c), np.asarray(used_c)),
        (np.asarray(big_t), np.asarray(var_t), np.asarray(used_t)),
        df,
        np.asarray(reason, dtype="<U13"),
        method="stratified-z" + ("-delta" if relative else ""),
        relative=relative,
        alpha=alpha,
        alternative=alternative,
    )
