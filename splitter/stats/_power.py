r"""Power analysis: sample size per arm for a minimum detectable effect, and the inverse.

Normal approximation, with k = `ratio` = n_treatment / n_control, d the absolute effect
and z_a = z_{1 - alpha/2} (two-sided) or z_{1 - alpha} (one-sided), z_b = z_{power}:

- means: n_control = (z_a + z_b)^2 sd^2 (1 + 1/k) / d^2 (the same sd in both arms);
- proportions, p1 = baseline, p2 = p1 + d, pooled variance under H0
  (Fleiss, Levin & Paik, "Statistical Methods for Rates and Proportions", 3rd ed., 4.14,
  without continuity correction), with pbar = (p1 + k p2) / (1 + k):

      n_control = ( z_a sqrt(pbar (1 - pbar) (1 + 1/k))
                    + z_b sqrt(p1 (1 - p1) + p2 (1 - p2) / k) )^2 / d^2

  Reference value: p1 = 0.10, d = 0.02, two-sided alpha = 0.05, power = 0.8, k = 1 gives
  3840.3, so 3,841 per arm.

`sample_size` returns the control arm's n, rounded up; the treatment arm needs
ceil(ratio * n). `mde` inverts the formulas (a root search for proportions, looking
upwards from the baseline).
"""

from __future__ import annotations

import math
from typing import Literal

from scipy import optimize
from scipy.stats import norm

from tritonab.errors import StatsError
from tritonab.splitter.stats import _validate as v
from tritonab.splitter.stats._validate import Alternative

Kind = Literal["proportion", "mean"]


def _check(
    kind: str, baseline: float, sd: float | None, alpha: float, power: float, ratio: float, alternative: str
) -> tuple[float, float]:
    """Validate the shared arguments; returns (z_alpha, z_beta)."""
    if kind not in ("proportion", "mean"):
        raise StatsError(f"`kind` must be 'proportion' or 'mean', got {kind!r}")
    v.check_alpha(alpha)
    v.check_alpha(power, "power")
    v.check_alternative(alternative)
    if not ratio > 0 or not math.isfinite(ratio):
        raise StatsError(f"`ratio` must be > 0, got {ratio!r}")
    if kind == "proportion" and not 0.0 < baseline < 1.0:
        raise StatsError(f"`baseline` must be in (0, 1) for a proportion, got {baseline!r}")
    if kind == "mean" and (sd is None or not sd > 0 or not math.isfinite(sd)):
        raise StatsError(f"`sd` must be > 0 for kind='mean', got {sd!r}")
    tail = alpha / 2.0 if alternative == "two-sided" else alpha
    return float(norm.ppf(1.0 - tail)), float(norm.ppf(power))


def _n_control(
    kind: str, p1: float, d: float, sd: float | None, z_a: float, z_b: float, ratio: float
) -> float:
    """The unrounded control-arm sample size."""
    if kind == "mean":
        assert sd is not None
        return (z_a + z_b) ** 2 * sd**2 * (1.0 + 1.0 / ratio) / d**2
    p2 = p1 + d
    pbar = (p1 + ratio * p2) / (1.0 + ratio)
    null = z_a * math.sqrt(pbar * (1.0 - pbar) * (1.0 + 1.0 / ratio))
    alt = z_b * math.sqrt(p1 * (1.0 - p1) + p2 * (1.0 - p2) / ratio)
    return (null + alt) ** 2 / d**2


def sample_size(
    kind: Kind,
    *,
    baseline: float,
    mde: float,
    sd: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    relative: bool = False,
    ratio: float = 1.0,
    alternative: Alternative = "two-sided",
) -> int:
    """Units needed in the control arm (per arm when `ratio` is 1) to detect `mde`.

    Args:
        kind: "proportion" (pooled variance under H0) or "mean".
        baseline: control rate (proportion) or control mean (mean; used when `relative`).
        mde: minimum detectable effect, absolute or (with `relative`) a fraction of baseline.
            Its sign is the direction; for a proportion, p2 = baseline + mde must be in (0, 1).
        sd: per-unit standard deviation; required for kind="mean".
        alpha: significance level.
        power: 1 - beta.
        relative: `mde` is relative to `baseline`.
        ratio: allocation ratio n_treatment / n_control.
        alternative: "two-sided", or "greater"/"less" for a one-sided test.

    Returns:
        ceil(n_control); the treatment arm needs ceil(ratio * n_control).

    Raises:
        StatsError: unknown kind, bad alpha/power/ratio, baseline outside (0, 1) for a
            proportion, missing sd for a mean, zero mde, or p2 outside (0, 1).
    """
    z_a, z_b = _check(kind, baseline, sd, alpha, power, ratio, alternative)
    d = mde * baseline if relative else mde
    if not math.isfinite(d) or d == 0:
        raise StatsError(f"`mde` must be a non-zero effect, got {mde!r} (absolute {d!r})")
    if kind == "proportion" and not 0.0 < baseline + d < 1.0:
        raise StatsError(f"`mde` moves the proportion to {baseline + d!r}, outside (0, 1)")
    n = _n_control(kind, baseline, abs(d) if kind == "mean" else d, sd, z_a, z_b, ratio)
    # Guard against 3841.0000000001 from floating error before rounding up.
    return int(math.ceil(round(n, 6)))


def mde(
    kind: Kind,
    *,
    baseline: float,
    n: float,
    sd: float | None = None,
    alpha: float = 0.05,
    power: float = 0.8,
    relative: bool = False,
    ratio: float = 1.0,
    alternative: Alternative = "two-sided",
) -> float:
    """Minimum detectable (positive) effect with `n` units in the control arm.

    Args:
        kind: "proportion" or "mean".
        baseline: control rate or mean.
        n: control-arm units (the treatment arm has ratio * n).
        sd: per-unit standard deviation; required for kind="mean".
        alpha: significance level.
        power: 1 - beta.
        relative: return the effect as a fraction of `baseline`.
        ratio: allocation ratio n_treatment / n_control.
        alternative: "two-sided", or "greater"/"less" for a one-sided test.

    Returns:
        The smallest upward effect detectable with the given power (absolute, or relative).

    Raises:
        StatsError: as `sample_size`, a non-positive `n`, zero baseline for a relative mean,
            or no detectable increase below a proportion of 1.
    """
    z_a, z_b = _check(kind, baseline, sd, alpha, power, ratio, alternative)
    if not n > 0 or not math.isfinite(n):
        raise StatsError(f"`n` must be > 0, got {n!r}")
    if kind == "mean":
        assert sd is not None
        d = (z_a + z_b) * sd * math.sqrt((1.0 + 1.0 / ratio) / n)
    else:
        d = _proportion_mde(baseline, n, z_a, z_b, ratio)
    if not relative:
        return d
    if baseline == 0:
        raise StatsError("`baseline` must be non-zero for a relative mde")
    return d / abs(baseline)


def _proportion_mde(p1: float, n: float, z_a: float, z_b: float, ratio: float) -> float:
    """Root of n_control(d) = n for d in (0, 1 - p1)."""
    top = 1.0 - p1 - 1e-12

    def gap(d: float) -> float:
        return _n_control("proportion", p1, d, None, z_a, z_b, ratio) - n

    if gap(top) > 0:
        raise StatsError(f"`n` = {n!r} is too small to detect any increase from {p1!r}")
    return float(optimize.brentq(gap, 1e-12, top, xtol=1e-12))
