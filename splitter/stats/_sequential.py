r"""Asymptotic confidence sequences: inference that stays valid under continuous peeking.

Reference: I. Waudby-Smith, D. Arbour, R. Sinha, E. H. Kennedy, A. Ramdas,
"Time-uniform central limit theory and asymptotic confidence sequences",
arXiv:2103.06476 (v7), eq. 9 (the Gaussian-mixture boundary), eq. 155 (the mixture
e-value) and eq. 161 (the choice of rho). GrowthBook's gbstats
(`SequentialTwoSidedTTest`) implements the same sequence and serves as a golden reference.

With N = n_control + n_treatment units seen so far, `se` the standard error of the
effect estimator (absolute or delta-method relative) and sigma = se * sqrt(N) its
per-unit scale, the tuning parameter N* (`sequential_tuning`, the total sample size at
which a decision is expected; the boundary is tightest near it) fixes

    rho^2 = (-2 ln(alpha) + ln(1 - 2 ln(alpha))) / N*                      (eq. 161)

and the two-sided (1 - alpha) confidence sequence is

    effect +/- sigma * sqrt( 2 (N rho^2 + 1) / (N^2 rho^2) * ln( sqrt(N rho^2 + 1) / alpha ) )

The Gaussian-mixture e-value for H0: effect = 0, with z = effect / se, is

    E = exp( rho^2 N z^2 / (2 (N rho^2 + 1)) ) / sqrt(N rho^2 + 1)         (eq. 155)

and the anytime-valid p-value is p = min(1, 1/E). By Ville's inequality
P(exists N: E_N >= 1/alpha) <= alpha under H0 (asymptotically), and p < alpha exactly when
0 lies outside the sequence. Note that rho, hence p, depends on alpha.

Only two-sided sequences are provided: the symmetric mixture's one-sided tails are not
each bounded by alpha, so `compare` rejects one-sided alternatives when sequential.
"""

from __future__ import annotations

from typing import overload

import numpy as np
from numpy.typing import ArrayLike

from tritonab.errors import StatsError
from tritonab.splitter.stats._validate import FloatOrArray


def check_tuning(sequential_tuning: object) -> float:
    """N* must be a positive finite number."""
    if isinstance(sequential_tuning, bool) or not isinstance(sequential_tuning, (int, float)):
        raise StatsError(f"`sequential_tuning` must be a number, got {sequential_tuning!r}")
    if not np.isfinite(sequential_tuning) or sequential_tuning <= 0:
        raise StatsError(f"`sequential_tuning` must be > 0, got {sequential_tuning!r}")
    return float(sequential_tuning)


def rho_squared(sequential_tuning: float, alpha: float) -> float:
    """rho^2 of eq. 161: the mixture variance that optimises the width at N = N*."""
    log_alpha = np.log(alpha)
    return float((-2.0 * log_alpha + np.log(1.0 - 2.0 * log_alpha)) / sequential_tuning)


# Both helpers follow numpy: a float (numpy.float64) for scalar or 0-d inputs, an array otherwise.
@overload
def half_width(se: float, n_total: float, alpha: float, sequential_tuning: float) -> float: ...
@overload
def half_width(se: ArrayLike, n_total: ArrayLike, alpha: float, sequential_tuning: float) -> FloatOrArray: ...
def half_width(se: ArrayLike, n_total: ArrayLike, alpha: float, sequential_tuning: float) -> FloatOrArray:
    """Half-width of the two-sided confidence sequence (eq. 9) on the effect's scale.

    Args:
        se: standard error of the effect estimator.
        n_total: total units N over both arms.
        alpha: significance level.
        sequential_tuning: N*, the total sample size where a decision is expected.

    Returns:
        The half-width, broadcast over the inputs (a float for scalar inputs).
    """
    n = np.asarray(n_total, dtype=np.float64)
    r2 = rho_squared(sequential_tuning, alpha)
    sigma = np.asarray(se) * np.sqrt(n)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = 2.0 * (n * r2 + 1.0) / (n**2 * r2) * np.log(np.sqrt(n * r2 + 1.0) / alpha)
    # numpy's stubs lose the dtype through ufuncs (NDArray[Any], then Any): name the result.
    width: FloatOrArray = sigma * np.sqrt(factor)
    return width


@overload
def p_value(z: float, n_total: float, alpha: float, sequential_tuning: float) -> float: ...
@overload
def p_value(z: ArrayLike, n_total: ArrayLike, alpha: float, sequential_tuning: float) -> FloatOrArray: ...
def p_value(z: ArrayLike, n_total: ArrayLike, alpha: float, sequential_tuning: float) -> FloatOrArray:
    """Anytime-valid p-value min(1, 1/E) of the Gaussian-mixture e-value (eq. 155).

    Args:
        z: effect / se.
        n_total: total units N over both arms.
        alpha: significance level (it sets rho).
        sequential_tuning: N*.

    Returns:
        The p-value, broadcast over the inputs (a float for scalar inputs).
    """
    n = np.asarray(n_total, dtype=np.float64)
    r2 = rho_squared(sequential_tuning, alpha)
    log_e = r2 * n * np.square(z) / (2.0 * (n * r2 + 1.0)) - 0.5 * np.log(n * r2 + 1.0)
    p: FloatOrArray = np.exp(-np.maximum(log_e, 0.0))  # typed as in `half_width`
    return p
